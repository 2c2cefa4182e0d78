// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The same request sent many times at once (a double click, a client retrying a request whose answer
 * is slow) is one request: where its step keeps the order's status (an address change, a refund of
 * some units) or the first one's step refuses the others' (a return asked), each answers what the
 * first did, and the order's history, events and warehouse updates hold it once.
 */
describe('identical requests sent at once', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('identical_requests');
    await system.createSku({ skuId: 'DESK', priceCents: 15_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  const patch = (orderId: string, buyer: string, line1: string) =>
    system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token(buyer), body: { address: { ...buyerAddress, line1 } } });
  const steps = (order: any, action: string) => order.history.filter((h: any) => h.action === action);

  it('records one change_address step for forty identical address changes sent at once to an unpaid order (the same address again changes nothing)', async () => {
    const orderId = await system.checkout('amy', [{ skuId: 'DESK', qty: 1 }], 'amy-same-address');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const answers = await Promise.all(Array.from({ length: 40 }, () => patch(orderId, 'amy', '7 Same Street')));
    expect(answers.map((a) => a.status).filter((s) => s !== 200)).toEqual([]);
    const order = await system.order(orderId);
    expect(order.address.line1).toBe('7 Same Street');
    expect(steps(order, 'change_address')).toHaveLength(1);
  });

  it('records one change_address step for forty identical address changes sent at once to an order in fulfilment', async () => {
    const orderId = await system.checkout('bob', [{ skuId: 'DESK', qty: 1 }], 'bob-same-address');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('bob'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const answers = await Promise.all(Array.from({ length: 40 }, () => patch(orderId, 'bob', '8 Same Street')));
    expect(answers.map((a) => a.status).filter((s) => s !== 200)).toEqual([]);
    const order = await system.order(orderId);
    expect(steps(order, 'change_address')).toHaveLength(1);
  });

  it('opens one refund for thirty identical refunds of one unit sent at once without a key (the same request again answers the same refund)', async () => {
    const orderId = await system.checkout('eve', [{ skuId: 'DESK', qty: 3 }], 'eve-refund-race');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('eve'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('eve'), body: { reason: 'one too many', items: [{ skuId: 'DESK', qty: 1 }] } })),
    );
    expect(answers.map((a) => [a.status, a.body.code])).toEqual(answers.map(() => [202, undefined]));
    expect(new Set(answers.map((a) => a.body.refundId)).size).toBe(1);
    const refunds = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('eve') })).body.items;
    expect(refunds).toHaveLength(1);
  });

  it('answers twenty identical return requests sent at once without a key with the one return they open (the same request again answers the same return)', async () => {
    const orderId = await system.shipped('ivy', [{ skuId: 'DESK', qty: 2 }]);
    expect((await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() })).status).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ivy'), body: { reason: 'too big', items: [{ skuId: 'DESK', qty: 1 }] } })),
    );
    expect(answers.map((a) => [a.status, a.body.code])).toEqual(answers.map(() => [202, undefined]));
    expect(new Set(answers.map((a) => a.body.returnId)).size).toBe(1);
  });
});
