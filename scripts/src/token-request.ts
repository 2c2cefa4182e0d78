import { ROLES, SUBJECT, type Role } from '@orders/api';

const USAGE = 'usage: npm run token -- [buyer|merchant|admin] [sub]';
const DEFAULT_SUBJECT = { buyer: 'demo-buyer', merchant: 'shop', admin: 'ops' } as const;

/** What `npm run token -- <buyer|merchant|admin> <sub>` asks for; throws, saying why, for a token the api would refuse. */
export function tokenRequest(args: readonly string[]): { role: Role; sub: string } {
  if (args.length > 2) throw new Error(`too many arguments: ${args.slice(2).join(' ')}\n${USAGE}`);
  const [role = 'buyer', given] = args;
  const known = ROLES.find((candidate) => candidate === role);
  if (!known) throw new Error(`role must be buyer, merchant or admin, not '${role}'\n${USAGE}`);
  const sub = given ?? DEFAULT_SUBJECT[known];
  // the api refuses any other subject with 401: a token it refuses is no use to print
  if (!SUBJECT.test(sub)) throw new Error(`sub must be 1 to 64 letters, digits or . _ : @ - (as the api accepts), not '${sub}'\n${USAGE}`);
  return { role: known, sub };
}
