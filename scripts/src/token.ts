import { issueToken } from '@orders/api';
import { loadConfig } from '@orders/config';
import { runCommand } from './run-command.js';

/** npm run token -- <buyer|merchant|admin> <sub> */
runCommand(async () => {
  const [role = 'buyer', sub = role === 'buyer' ? 'demo-buyer' : role === 'merchant' ? 'shop' : 'ops'] = process.argv.slice(2);
  if (role !== 'buyer' && role !== 'merchant' && role !== 'admin') throw new Error('role must be buyer, merchant or admin');
  console.log(issueToken(loadConfig().AUTH_JWT_SECRET, sub, role));
});
