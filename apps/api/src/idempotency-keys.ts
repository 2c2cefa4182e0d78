import type { FastifyRequest } from 'fastify';
import { validationFailed } from './problems.js';

/** Printable ASCII, spaces inside too (a header's ends are trimmed): API.md's "1–255 chars". */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7E]+$';

/** A route's headers schema with an optional Idempotency-Key; `means`: what the key does there. */
export function optionalIdempotencyKey(means: string) {
  return {
    type: 'object',
    properties: {
      'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: IDEMPOTENCY_KEY_PATTERN, description: `optional; ${means}` },
    },
  } as const;
}

/**
 * Refuses a request carrying Idempotency-Key more than once: Node joins the copies into one
 * "a, b", a key the client never sent, which would name an attempt of its own. Looked for in
 * the raw headers only when the key holds ", ", as joined ones do.
 */
export function refuseRepeatedKey(request: FastifyRequest): void {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || !key.includes(', ')) return;
  const raw = request.raw.rawHeaders;
  let copies = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'idempotency-key') copies += 1;
  if (copies > 1) throw validationFailed(`headers/idempotency-key: sent ${copies} times; send it once`);
}
