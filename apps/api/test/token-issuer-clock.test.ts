import { createTestEnv, signToken, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * The identity provider's clock is not the api host's. A token issued on a host 3 s ahead (as
 * `npm run token` issues them, for the whole AUTH_JWT_MAX_LIFETIME_MS, or valid from its issue:
 * `nbf`) was refused by an api 3 s behind until its clock caught up; a client taking 401 for
 * "sign in again" looped. Within AUTH_CLOCK_TOLERANCE_MS (30 s by default) it is taken.
 */
describe('tokens issued on a host whose clock is ahead of the api’s', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  const LIFETIME_S = 3_600;
  const AHEAD_S = 3;

  beforeAll(async () => {
    env = await createTestEnv('token_issuer_clock', { AUTH_JWT_MAX_LIFETIME_MS: String(LIFETIME_S * 1000), AUTH_CLOCK_TOLERANCE_MS: '30000' });
    api = await startApi(env);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const issuerNow = () => Math.floor(Date.now() / 1000) + AHEAD_S;
  const ordersWith = (claims: Record<string, unknown>) => api.request('GET', '/v1/orders', { token: signToken(env.config.AUTH_JWT_SECRET, { sub: 'ada', role: 'buyer', ...claims }) });

  it('takes at once a token issued for the whole lifetime the api accepts, and one valid from its issue (nbf)', async () => {
    expect((await ordersWith({ iat: issuerNow(), exp: issuerNow() + LIFETIME_S })).status).toBe(200);
    expect((await ordersWith({ iat: issuerNow(), nbf: issuerNow(), exp: issuerNow() + 600 })).status).toBe(200);
  });

  it('still refuses what no clock difference explains: a token not valid for another minute, one expired a minute ago, one living a minute past the lifetime', async () => {
    const now = Math.floor(Date.now() / 1000);
    const refusals = [
      await ordersWith({ nbf: now + 60, exp: now + 600 }),
      await ordersWith({ exp: now - 60 }),
      await ordersWith({ exp: now + LIFETIME_S + 60 }),
    ].map((answer) => [answer.status, answer.body.detail]);
    expect(refusals).toEqual([
      [401, 'The token is not valid'],
      [401, 'The token has expired'],
      [401, 'The token expires more than 1 hour from now, later than the api accepts'],
    ]);
  });
});
