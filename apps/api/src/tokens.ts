// The tokens' claims and their signing, without Fastify: `npm run token` loads this alone (@orders/api/tokens).
import { createSigner } from 'fast-jwt';

/** Who a token says its holder is: a buyer, a merchant (its `sub` the merchant id) or an operator. */
export type Role = 'buyer' | 'merchant' | 'admin';
export const ROLES: readonly Role[] = ['buyer', 'merchant', 'admin'];
/**
 * A token's subject the api accepts (`npm run token` checks it too, rather than print a token every request refuses).
 * Not `.` or `..`: admin routes take a subject as a path segment (/v1/admin/members/:userId), and
 * every URL client resolves those away (/v1/admin/members/.. is /v1/admin/), so no admin could address that buyer.
 */
export const SUBJECT = /^(?!\.\.?$)[A-Za-z0-9._:@-]{1,64}$/;

/** Issues a token the api accepts (demo tokens printed by `npm start`, `npm run token`). */
export function issueToken(secret: string, sub: string, role: Role, ttlMs = 24 * 3600 * 1000): string {
  return createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlMs })({ sub, role });
}
