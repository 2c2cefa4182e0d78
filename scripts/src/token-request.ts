import { ROLES, SUBJECT, type Role } from '@orders/api/tokens';
import { DEMO_BUYER } from './demo-shop.js';
import { UsageError } from './run-command.js';

export const TOKEN_USAGE = `usage: npm run token -- [buyer|merchant|admin] [sub]
Prints a token for the api, signed with AUTH_JWT_SECRET and valid for 24 h (AUTH_JWT_MAX_LIFETIME_MS if shorter), for the role
(buyer when left out) and subject (demo-buyer, shop or ops when left out).`;
const DEFAULT_SUBJECT = { buyer: DEMO_BUYER, merchant: 'shop', admin: 'ops' } as const;

/** What `npm run token -- <buyer|merchant|admin> <sub>` asks for; throws, saying why, for a token the api would refuse. */
export function tokenRequest(args: readonly string[]): { role: Role; sub: string } {
  if (args.length > 2) throw new UsageError(`too many arguments: ${args.slice(2).join(' ')}`);
  const [role = 'buyer', given] = args;
  const known = ROLES.find((candidate) => candidate === role);
  if (!known) throw new UsageError(`role must be buyer, merchant or admin, not '${role}'`);
  const sub = given ?? DEFAULT_SUBJECT[known];
  // the api refuses any other subject with 401: a token it refuses is no use to print
  if (!SUBJECT.test(sub)) throw new UsageError(`sub must be 1 to 64 letters, digits or . _ : @ | + -, and not . or .. (as the api accepts), not '${sub}'`);
  return { role: known, sub };
}
