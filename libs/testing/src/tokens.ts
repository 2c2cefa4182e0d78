import { createHmac } from 'node:crypto';

const base64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/**
 * Signs an HS256 JWT by hand, independently of the api's verifier, so tests show the
 * api accepts any standard token and nothing specific to its own library.
 */
export function signToken(
  secret: string,
  claims: { sub: string; role: string; exp?: number; [claim: string]: unknown },
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const body = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(body))}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
