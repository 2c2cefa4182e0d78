import { issueToken } from '@orders/api';
import { loadConfig } from '@orders/config';
import { runCommand } from './run-command.js';
import { tokenRequest } from './token-request.js';

/** npm run token -- <buyer|merchant|admin> <sub> */
runCommand(async () => {
  const { role, sub } = tokenRequest(process.argv.slice(2));
  console.log(issueToken(loadConfig().AUTH_JWT_SECRET, sub, role));
});
