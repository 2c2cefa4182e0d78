import { createSigner } from 'fast-jwt';
import type { Role } from './plugins/auth.js';

/** Issues a token the api accepts (demo tokens printed by `npm start`, `npm run token`). */
export function issueToken(secret: string, sub: string, role: Role, ttlMs = 24 * 3600 * 1000): string {
  return createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlMs })({ sub, role });
}
