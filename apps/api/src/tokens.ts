// The tokens' claims and their signing, without Fastify: `npm run token` loads this alone (@orders/api/tokens).
import { createSigner } from 'fast-jwt';

/** Who a token says its holder is: a buyer, a merchant (its `sub` the merchant id) or an operator. */
export type Role = 'buyer' | 'merchant' | 'admin';
export const ROLES: readonly Role[] = ['buyer', 'merchant', 'admin'];
/**
 * A token's subject the api accepts (`npm run token` checks it too, rather than print a token every request refuses).
 * `|` and `+` as identity providers put them in theirs (Auth0's `auth0|…`, `google-oauth2|…`): refused, none of
 * their buyers could sign in. Not `.` or `..`: admin routes take a subject as a path segment
 * (/v1/admin/members/:userId), and every URL client resolves those away (/v1/admin/members/.. is
 * /v1/admin/), so no admin could address that buyer.
 */
export const SUBJECT = /^(?!\.\.?$)[A-Za-z0-9._:@|+-]{1,64}$/;

/** How the api's tokens are signed, and the issuer and audience it requires of them (empty: none). */
export interface TokenSigning {
  AUTH_JWT_SECRET: string;
  AUTH_JWT_ISSUER: string;
  AUTH_JWT_AUDIENCE: string;
}

/** How long a token issued here lives: a day, or the most the api accepts (AUTH_JWT_MAX_LIFETIME_MS) when that is shorter. */
export const issuedTokenLifetimeMs = (config: { AUTH_JWT_MAX_LIFETIME_MS: number }): number => Math.min(24 * 3600 * 1000, config.AUTH_JWT_MAX_LIFETIME_MS);

/** Issues a token the api accepts (demo tokens printed by `npm start`, `npm run token`): one living longer than it accepts it refuses. */
export function issueToken(signing: TokenSigning & { AUTH_JWT_MAX_LIFETIME_MS: number }, sub: string, role: Role): string {
  return createSigner({
    key: signing.AUTH_JWT_SECRET,
    algorithm: 'HS256',
    expiresIn: issuedTokenLifetimeMs(signing),
    ...(signing.AUTH_JWT_ISSUER ? { iss: signing.AUTH_JWT_ISSUER } : {}),
    ...(signing.AUTH_JWT_AUDIENCE ? { aud: signing.AUTH_JWT_AUDIENCE } : {}),
  })({ sub, role });
}
