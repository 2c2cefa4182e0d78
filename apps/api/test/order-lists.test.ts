// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('order lists, the times a request carries, and bodies of actions that take none, as API.md and /docs/json describe them', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;
  let imported: string;
  let queued: string;
  const ids = (answer: { body: any }) => answer.body.items.map((order: any) => order.orderId);

  beforeAll(async () => {
    env = await createTestEnv('order_lists');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    // a persisted order of ivy's (no worker runs in this file: an import is written at once), and one still in the queue
    const order = { externalOrderId: 'EXT-1', userId: 'ivy', placedAt: new Date().toISOString(), status: 'PAID', items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900 }], address: buyerAddress };
    const answer = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'partner', orders: [order] } });
    expect(answer.status).toBe(200);
    imported = answer.body.results[0].orderId;
    const placed = await api.request('POST', '/v1/orders', { token: api.token('ivy'), headers: { 'idempotency-key': 'ivy-1' }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress } });
    expect(placed.status).toBe(202);
    queued = placed.body.orderId;
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it("answers API.md's list template sent with empty values (?status=&type=&limit=&cursor=) as if they were left out, for a buyer, a merchant and an admin", async () => {
    for (const [who, token, path, template] of [
      ['buyer', api.token('ivy'), '/v1/orders', '?status=&type=&limit=&cursor='],
      ['merchant', api.token('shop', 'merchant'), '/v1/orders', '?status=&type=&limit=&cursor='],
      ['admin', admin, '/v1/admin/orders', '?status=&type=&userId=&merchantId=&skuId=&parentOrderId=&topLevel=&leaf=&createdFrom=&createdTo=&limit=&cursor='],
    ] as const) {
      const blank = await api.request('GET', `${path}${template}`, { token });
      expect([blank.status, blank.body.code], who).toEqual([200, undefined]);
      // a buyer's list holds their order still in the queue too, newest first; the others the persisted ones
      expect(ids(blank), who).toEqual(who === 'buyer' ? [queued, imported] : [imported]);
      expect(blank.body, who).toEqual((await api.request('GET', path, { token })).body);
      // a value sent is still checked
      const typo = await api.request('GET', `${path}?status=PAYED&cursor=`, { token });
      expect([typo.status, typo.body.code, typo.body.detail], who).toEqual([400, 'VALIDATION_FAILED', expect.stringContaining('status')]);
    }
  });

  it("lists a buyer's order still in the queue in its place, as its id reads it (amounts null until persisted), for its buyer and in an admin's search by buyer; ?status=ACCEPTED lists it alone there and none elsewhere, as /docs/json says", async () => {
    const ivy = api.token('ivy');
    const one = await api.request('GET', `/v1/orders/${queued}`, { token: ivy });
    expect([one.status, one.body.status, one.body.amounts, one.body.items]).toEqual([200, 'ACCEPTED', null, [{ skuId: 'KETTLE', qty: 1 }]]);
    const listed = await api.request('GET', '/v1/orders', { token: ivy });
    expect(listed.body.items[0]).toEqual(one.body);
    expect(ids(await api.request('GET', '/v1/orders?status=ACCEPTED', { token: ivy }))).toEqual([queued]);
    expect(ids(await api.request('GET', '/v1/orders?status=PAID', { token: ivy }))).toEqual([imported]);
    expect(ids(await api.request('GET', '/v1/orders?type=standard', { token: ivy }))).toEqual([queued]);
    expect(ids(await api.request('GET', '/v1/orders?type=imported', { token: ivy }))).toEqual([imported]);
    // a page at a time, the cursor going on from the order in the queue to the persisted one
    const first = await api.request('GET', '/v1/orders?limit=1', { token: ivy });
    expect([ids(first), first.body.nextCursor]).toEqual([[queued], expect.any(String)]);
    const second = await api.request('GET', `/v1/orders?limit=1&cursor=${first.body.nextCursor}`, { token: ivy });
    expect([ids(second), second.body.nextCursor]).toEqual([[imported], null]);
    // an admin's search by the buyer finds it, save one that names what a queued order cannot tell (its merchant's)
    const search = async (query: string) => ids(await api.request('GET', `/v1/admin/orders?userId=ivy&${query}`, { token: admin }));
    expect(await search('')).toEqual([queued, imported]);
    expect(await search('status=ACCEPTED')).toEqual([queued]);
    expect(await search('skuId=KETTLE&topLevel=true&leaf=true')).toEqual([queued, imported]);
    // a flag sent false narrows nothing, as one left out
    expect(await search('topLevel=false&leaf=false&refundDeclined=false&refundUnconfirmed=false&paymentUnconfirmed=false')).toEqual([queued, imported]);
    expect(await search('type=imported')).toEqual([imported]);
    expect(await search('merchantId=shop')).toEqual([imported]);
    expect(await search(`createdFrom=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect(await search(`createdFrom=${encodeURIComponent(one.body.history[0].at)}`)).toEqual([queued]);
    // nobody else's list holds it: another buyer's, a merchant's and an admin's list persisted orders
    expect(ids(await api.request('GET', '/v1/orders', { token: api.token('joe') }))).toEqual([]);
    for (const [token, path] of [
      [api.token('shop', 'merchant'), '/v1/orders'],
      [admin, '/v1/admin/orders'],
    ] as const) {
      const accepted = await api.request('GET', `${path}?status=ACCEPTED`, { token });
      expect([accepted.status, accepted.body], path).toEqual([200, { items: [], nextCursor: null }]);
    }
    const spec = (await api.request('GET', '/docs/json')).body;
    for (const path of ['/v1/orders', '/v1/admin/orders']) {
      const status = spec.paths[path].get.parameters.find((parameter: any) => parameter.name === 'status');
      expect(status.schema.enum, path).toContain('PAID');
      expect(status.schema.enum, path).toContain('ACCEPTED');
      expect(status.description, path).toMatch(/queue/);
    }
    expect(spec.paths['/v1/orders'].get.description).toMatch(/still in the queue/);
    expect(spec.paths['/v1/orders/{orderId}'].get.responses['200'].description).toMatch(/amounts are null/);
  });

  it('refuses a createdFrom or createdTo the shop cannot keep (a leap second, year 10000 in UTC, year 1) with 400 naming it; the last second of 9999 is taken', async () => {
    for (const [field, time] of [
      ['createdFrom', '2016-12-31T23:59:60Z'],
      ['createdTo', '2016-12-31T23:59:60Z'],
      ['createdTo', '9999-12-31T23:59:59-05:00'],
      ['createdFrom', '0001-01-01T00:00:00Z'],
    ] as const) {
      const refused = await api.request('GET', `/v1/admin/orders?${field}=${encodeURIComponent(time)}`, { token: admin });
      expect([refused.status, refused.body.code, refused.body.detail], `${field}=${time}`).toEqual([400, 'VALIDATION_FAILED', expect.stringContaining(field)]);
    }
    const widest = await api.request('GET', `/v1/admin/orders?createdFrom=${encodeURIComponent('1000-01-01T00:00:00Z')}&createdTo=${encodeURIComponent('9999-12-31T23:59:59Z')}`, { token: admin });
    expect([widest.status, ids(widest)]).toEqual([200, [imported]]);
  });

  it("refuses unknown fields in the bodies of confirm-receipt and of a webhook's removal (400 naming them, nothing changed); without a body they answer as before", async () => {
    const ivy = api.token('ivy');
    const signed = await api.request('POST', `/v1/orders/${imported}/confirm-receipt`, { token: ivy, body: { signedBy: 'neighbour' } });
    expect([signed.status, signed.body.code, signed.body.detail]).toEqual([400, 'VALIDATION_FAILED', expect.stringContaining('signedBy')]);
    // a paid order has nothing to sign for, with an empty body or none
    for (const body of [undefined, {}]) expect((await api.request('POST', `/v1/orders/${imported}/confirm-receipt`, { token: ivy, body })).body.code).toBe('ILLEGAL_TRANSITION');

    const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'http://127.0.0.1:9/orders' } });
    expect(hook.status).toBe(201);
    const removal = await api.request('DELETE', `/v1/admin/webhooks/${hook.body.webhookId}`, { token: admin, body: { keepDeliveries: false } });
    expect([removal.status, removal.body.code, removal.body.detail]).toEqual([400, 'VALIDATION_FAILED', expect.stringContaining('keepDeliveries')]);
    expect((await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items.map((w: any) => w.webhookId)).toEqual([hook.body.webhookId]);
    expect((await api.request('DELETE', `/v1/admin/webhooks/${hook.body.webhookId}`, { token: admin })).status).toBe(204);
    expect((await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items).toEqual([]);
  });

  it('refuses a webhook URL carrying credentials (user:pass@), which no delivery could be sent to and every listing would show: 400 naming the field, nothing registered', async () => {
    const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'https://crm:s3cret@crm.example.com/orders' } });
    expect([hook.status, hook.body.code, hook.body.detail]).toEqual([400, 'VALIDATION_FAILED', expect.stringMatching(/^body\/url: .*credentials/)]);
    expect(hook.body.detail).not.toContain('s3cret');
    expect((await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items).toEqual([]);
  });
});
