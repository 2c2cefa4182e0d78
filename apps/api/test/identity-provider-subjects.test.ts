import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * Identity providers name their users with `|` (Auth0: `auth0|…`, `google-oauth2|…`), some with `+`:
 * every token of such a shop was refused 401, so none of its buyers could buy (text review). Devices
 * send ids of any printable ASCII (base64, a braced GUID), which RISK_BLOCKED_DEVICES could not list.
 */
describe('buyers named by an identity provider, and devices by their apps', () => {
  const AUTH0 = 'auth0|5f7c8ec7c33c6c004bbafe82';
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('identity_provider_subjects', { RISK_BLOCKED_USERS: 'google-oauth2|1122334455', RISK_BLOCKED_DEVICES: 'dGhpcyBpcyBh+/w==,{3F2504E0-4F89-11D3-9A0C-0305E82C3301}' });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const checkout = (sub: string, key: string, device?: string) =>
    api.request('POST', '/v1/orders', { token: api.token(sub), headers: { 'idempotency-key': key, ...(device ? { 'x-device-id': device } : {}) }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress } });

  it('lets a buyer whose subject holds a "|" check out and read the order, and an admin find it by that buyer', async () => {
    const placed = await checkout(AUTH0, 'auth0-kettle');
    expect([placed.status, placed.body.code]).toEqual([202, undefined]);
    const read = await api.request('GET', placed.body.statusUrl, { token: api.token(AUTH0) });
    expect([read.status, read.body.userId]).toEqual([200, AUTH0]);
    const found = await api.request('GET', `/v1/admin/orders?userId=${encodeURIComponent(AUTH0)}`, { token: api.token('ops', 'admin') });
    expect([found.status, found.body.items.map((order: { orderId: string }) => order.orderId)]).toEqual([200, [placed.body.orderId]]);
  });

  it('refuses a listed subject with "|" and listed devices with base64 or braced ids, and no others', async () => {
    const refusals = [await checkout('google-oauth2|1122334455', 'g-kettle'), await checkout('ann', 'ann-kettle-1', 'dGhpcyBpcyBh+/w=='), await checkout('ann', 'ann-kettle-2', '{3F2504E0-4F89-11D3-9A0C-0305E82C3301}')];
    expect(refusals.map((answer) => [answer.status, answer.body.code])).toEqual([
      [403, 'RISK_REJECTED'],
      [403, 'RISK_REJECTED'],
      [403, 'RISK_REJECTED'],
    ]);
    expect((await checkout('google-oauth2|9988776655', 'g2-kettle', '{00000000-0000-0000-0000-000000000000}')).status).toBe(202);
  });
});
