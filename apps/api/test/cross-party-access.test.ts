// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

describe("a token of the wrong party, probing a split order by every id-taking route and every form of its ids", () => {
  let system: OrderSystem;
  let orderId: string;
  let kettleChild: string;
  let mugChild: string;
  const warehouse = (child: string, event: string) => system.warehouseSim.request('POST', `/__admin/orders/${child}/events`, { body: { event } });

  beforeAll(async () => {
    system = await startOrderSystem('cross_party_access', { AFTER_SALES_WINDOW_MS: '60000' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 1_000, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    // ann buys a kettle from the shop and 2 mugs from the potter: paid, it splits in one child per merchant
    orderId = await system.checkout('ann', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    const kettleFirst = (await system.order(children[0]!)).items[0].skuId === 'KETTLE';
    [kettleChild, mugChild] = kettleFirst ? [children[0]!, children[1]!] : [children[1]!, children[0]!];
  });
  afterAll(async () => system?.close());

  /** Each id as typed, lower-cased, with a bucket suffix it does not have, and with a trailing space, percent-encoded. */
  const forms = (id: string) => [id, id.toLowerCase(), `${id}-g1`, `${id}%20`];
  const never = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

  it("answers another buyer 404 NOT_FOUND on the order and on each child, by every route and id form, as for an order that does not exist; changes nothing", async () => {
    const bob = system.token('bob');
    const routes = (id: string): Array<[string, string, unknown?]> => [
      ['GET', `/v1/orders/${id}`],
      ['GET', `/v1/orders/${id}/refunds`],
      ['POST', `/v1/orders/${id}/pay`, { method: 'card' }],
      ['POST', `/v1/orders/${id}/cancel`, { reason: 'mine now' }],
      ['PATCH', `/v1/orders/${id}/address`, { address: buyerAddress }],
      ['POST', `/v1/orders/${id}/confirm-receipt`],
      ['POST', `/v1/orders/${id}/refunds`, { reason: 'mine now' }],
      ['POST', `/v1/orders/${id}/returns`, { reason: 'mine now', items: [{ skuId: 'MUG', qty: 1 }] }],
    ];
    const answers = async (id: string) => Promise.all(routes(id).map(async ([method, url, body]) => {
      const answer = await system.request(method, url, { token: bob, body });
      return `${method} ${url.replace(id, '<id>')} ${answer.status} ${answer.body.code}`;
    }));
    const unknown = await answers(never);
    expect(unknown.every((line) => line.endsWith('404 NOT_FOUND'))).toBe(true);
    for (const id of [orderId, kettleChild, mugChild].flatMap(forms)) expect(await answers(id)).toEqual(unknown);
    expect((await system.request('GET', '/v1/orders?limit=100', { token: bob })).body.items).toEqual([]);
    for (const child of [kettleChild, mugChild]) expect((await system.order(child)).status).toBe('IN_FULFILLMENT');
    expect(await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).toMatchObject({ body: { items: [] } });
  });

  it("answers a merchant 404 on the other merchant's child by every route and id form, as for an order that does not exist, and never lists it", async () => {
    const potter = system.token('potter', 'merchant');
    const routes = (id: string): Array<[string, string, unknown?]> => [
      ['GET', `/v1/orders/${id}`],
      ['GET', `/v1/orders/${id}/refunds`],
      ['GET', `/v1/orders/${id}/actions`],
      ['POST', `/v1/orders/${id}/actions/ship`],
      ['POST', `/v1/orders/${id}/cancel`, { reason: 'not mine' }],
      ['POST', `/v1/orders/${id}/refunds`, { reason: 'not mine' }],
    ];
    const answers = async (id: string) => Promise.all(routes(id).map(async ([method, url, body]) => `${method} ${url.replace(id, '<id>')} ${(await system.request(method, url, { token: potter, body })).status}`));
    const unknown = await answers(never);
    for (const id of forms(kettleChild)) expect(await answers(id)).toEqual(unknown);
    const listed = (await system.request('GET', '/v1/orders?limit=100', { token: potter })).body.items.map((order: any) => order.orderId);
    expect(listed).toEqual([mugChild]);
    expect((await system.order(kettleChild)).status).toBe('IN_FULFILLMENT');
  });

  it("lets each merchant refuse only the return of its own child, asked through the parent or the child; the other merchant and a buyer get 404 and 403, and the return stays REQUESTED", async () => {
    for (const child of [kettleChild, mugChild]) for (const event of ['SHIPPED', 'DELIVERED']) await warehouse(child, event);
    for (const child of [kettleChild, mugChild]) await system.waitForStatus(child, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ann'), body: { reason: 'chipped', items: [{ skuId: 'MUG', qty: 1 }, { skuId: 'KETTLE', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const returnOf = (child: string) => asked.body.returns.find((r: any) => r.orderId === child).refundId as string;
    const [shop, potter] = [system.token('shop', 'merchant'), system.token('potter', 'merchant')];
    for (const [own, other, child] of [[shop, potter, kettleChild], [potter, shop, mugChild]] as const) {
      const returnId = returnOf(child);
      for (const via of [orderId, child]) {
        for (const id of [returnId, returnId.toLowerCase(), `${returnId}%20`]) {
          expect((await system.request('POST', `/v1/orders/${via}/returns/${id}/refuse`, { token: other })).status).toBe(404);
        }
        expect((await system.request('POST', `/v1/orders/${via}/returns/${returnId}/approve`, { token: other })).status).toBe(404);
        expect((await system.request('POST', `/v1/orders/${via}/returns/${returnId}/approve`, { token: system.token('bob') })).status).toBe(403);
      }
      const refunds = async (token: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token })).body.items;
      expect((await refunds(own)).map((r: any) => [r.refundId, r.status])).toEqual([[returnId, 'REQUESTED']]);
      const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: own, body: { reason: 'wear and tear' } });
      expect([refused.status, refused.body.status]).toEqual([200, 'REFUSED']);
    }
  });
});
