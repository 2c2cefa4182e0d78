import { createTestEnv, runOperatorCommand, signToken, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const ISSUER = 'https://id.shop.example';
const AUDIENCE = 'orders';

describe('an api that requires its identity provider’s issuer and audience', () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('token_issuer', { AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE });
    api = await startApi(env);
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const ordersWith = (claims: Record<string, unknown>) => api.request('GET', '/v1/orders', { token: signToken(env.config.AUTH_JWT_SECRET, { sub: 'ada', role: 'buyer', ...claims }) });

  it('takes a token of that issuer for that audience, among others', async () => {
    expect((await ordersWith({ iss: ISSUER, aud: AUDIENCE })).status).toBe(200);
    expect((await ordersWith({ iss: ISSUER, aud: ['loyalty', AUDIENCE] })).status).toBe(200);
  });

  it.each([
    ['no issuer nor audience (signed with the same secret)', {}],
    ['no audience', { iss: ISSUER }],
    ['another service’s audience', { iss: ISSUER, aud: 'loyalty' }],
    ['another issuer', { iss: 'https://evil.example', aud: AUDIENCE }],
  ])('refuses a token with %s: 401, as any token not valid', async (_what, claims) => {
    const refused = await ordersWith(claims);
    expect([refused.status, refused.body.code, refused.body.detail]).toEqual([401, 'UNAUTHORIZED', 'The token is not valid']);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="orders", error="invalid_token"');
  });

  it('has npm run token print tokens with that issuer and audience, which it takes', async () => {
    const printed = await runOperatorCommand('token', ['buyer', 'bea'], { ...env.env, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE });
    expect(printed.exitCode).toBe(0);
    const token = printed.stdout.trim();
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())).toMatchObject({ sub: 'bea', role: 'buyer', iss: ISSUER, aud: AUDIENCE });
    expect((await api.request('GET', '/v1/orders', { token })).status).toBe(200);
  });
});
