/** The signed-in merchant or operator: the pasted token, kept for this browser tab only. */
export interface Session {
  token: string;
  role: 'merchant' | 'admin';
  sub: string;
}

const KEY = 'order-centre-token';

/**
 * Reads the role and subject from the token's payload to shape the console (which
 * searches and actions to offer); the api verifies the token on every request.
 */
export function sessionFromToken(token: string): Session | string {
  const payload = token.trim().split('.')[1];
  if (!payload) return 'That is not a JWT: paste the whole token printed by npm run token';
  let claims: { sub?: unknown; role?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as typeof claims;
  } catch {
    return 'That is not a JWT: paste the whole token printed by npm run token';
  }
  if (claims.role !== 'merchant' && claims.role !== 'admin') return 'The console is for merchant and admin tokens';
  if (typeof claims.sub !== 'string') return 'The token carries no subject';
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return 'The token has expired';
  return { token: token.trim(), role: claims.role, sub: claims.sub };
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
