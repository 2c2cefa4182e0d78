/** The signed-in merchant or operator: the pasted token, kept for this browser tab only. */
export interface Session {
  token: string;
  role: 'merchant' | 'admin';
  sub: string;
}

const KEY = 'order-centre-token';

/**
 * Reads the role and subject from the token's payload to shape the console (which
 * searches and actions to offer); the api verifies the token on every request. Not its expiry:
 * the api decides that by its clock, and a browser clock ahead of it would refuse a token the api
 * takes (one expired is refused by the api's first answer, the sign-in page saying why).
 */
export function sessionFromToken(token: string): Session | string {
  const claims = claimsOf(token);
  if (!claims) return 'That is not a JWT: paste the whole token printed by npm run token';
  if (claims.role !== 'merchant' && claims.role !== 'admin') return 'The console is for merchant and admin tokens';
  if (typeof claims.sub !== 'string') return 'The token carries no subject';
  return { token: token.trim(), role: claims.role, sub: claims.sub };
}

/** The claims of a token's payload, read unverified (the api verifies it): null when it is not a JWT. */
function claimsOf(token: string): { sub?: unknown; role?: unknown } | null {
  const payload = token.trim().split('.')[1];
  if (!payload) return null;
  try {
    return JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown; role?: unknown };
  } catch {
    return null;
  }
}

/** Who is signed in on this tab, by role and subject, their token expired or not ('' when no one is). */
export function operatorOfTab(): string {
  const token = sessionStorage.getItem(KEY);
  const claims = token === null ? null : claimsOf(token);
  return claims ? `${String(claims.role)}:${encodeURIComponent(String(claims.sub))}` : '';
}

export function storedSession(): Session | null {
  const token = sessionStorage.getItem(KEY);
  if (token === null) return null;
  const session = sessionFromToken(token);
  return typeof session === 'string' ? null : session;
}

export function keepSession(session: Session | null): void {
  if (session) sessionStorage.setItem(KEY, session.token);
  else sessionStorage.removeItem(KEY);
}
