import { issueToken } from '@orders/api/tokens';
import { loadConfig } from '@orders/config';
import { runCommand } from './run-command.js';
import { TOKEN_USAGE, tokenRequest } from './token-request.js';

/** npm run token -- <buyer|merchant|admin> <sub> */
runCommand({ usage: TOKEN_USAGE, parse: tokenRequest }, async ({ role, sub }) => {
  console.log(issueToken(loadConfig(), sub, role));
});
