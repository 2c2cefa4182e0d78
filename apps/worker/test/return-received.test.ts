// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi } from '../../api/test/support/api-under-test.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe("the warehouse's RETURN_RECEIVED on an order returned in several parts", () => {
  let system: OrderSystem;
  let admin: string;
  let merchant: string;

  beforeAll(async () => {
    // the simulated warehouse retries a refused callback for up to 20 s (a parcel received before its return's approval)
    system = await startOrderSystem('return-received', { SIM_CALLBACK_ATTEMPTS: '400' });
    admin = system.token('ops', 'admin');
    merchant = system.token('shop', 'merchant');
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    expect((await system.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin, body: { feeCents: 500 } })).status).toBe(200);
  });
  afterAll(async () => system?.close());

  const stock = () => system.stockOf('LAMP');
  /** the simulated warehouse reports an event, naming the return whose parcel it received when given its id */
  const warehouse = (orderId: string, event: string, returnId?: string) =>
    system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event, ...(returnId === undefined ? {} : { returnId }) } });
  const returnsOf = async (orderId: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: admin })).body.items as any[];
  const paidBack = (orderId: string, returnId: string) =>
    waitFor(async () => (await returnsOf(orderId)).find((r) => r.refundId === returnId && r.status === 'SUCCEEDED'), { what: `return ${returnId} paid back`, timeoutMs: 30_000, intervalMs: 50 });
  const delivered = async (buyer: string, qty: number) => {
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) expect((await warehouse(orderId, event)).body.callbackStatus).toBe(200);
    return orderId;
  };
  const returnOne = async (buyer: string, orderId: string, reason: string) => {
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason, items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    return asked.body.returnId as string;
  };
  const approve = async (orderId: string, returnId: string) => {
    const approved = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: merchant });
    expect([approved.status, approved.body.status]).toEqual([200, 'APPROVED']);
  };
  /** the body of the warehouse's last RETURN_RECEIVED for the order, as it sent it (its retries send the same) */
  const lastReceipt = async (orderId: string) => {
    const order = (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
    const { event, at } = order.events.filter((e: any) => e.event === 'RETURN_RECEIVED').at(-1);
    return { orderId, event, at };
  };

  it("a repeat of an earlier return's RETURN_RECEIVED, without a return id, leaves the later approved return waiting for its parcel", async () => {
    const orderId = await delivered('gus', 3);
    const first = await returnOne('gus', orderId, 'one is chipped');
    await approve(orderId, first);
    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    await paidBack(orderId, first);
    const firstReceipt = await lastReceipt(orderId);

    const second = await returnOne('gus', orderId, 'too bright');
    await approve(orderId, second);
    expect(await stock()).toEqual({ available: 8, reserved: 0, sold: 2 });
    // the warehouse delivers its receipt of the first parcel once more, long after (a retry whose answer it never saw)
    const repeat = await system.signedCallback('warehouse', firstReceipt);
    expect([repeat.status, repeat.body]).toEqual([200, { changed: false, status: 'RETURNING' }]);

    // the second parcel has not come back: nothing restocked, nothing refunded for it
    await new Promise((resolve) => setTimeout(resolve, 500));
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents, order.items[0].refundedQty]).toEqual(['RETURNING', 2_400, 1]);
    expect((await returnsOf(orderId)).map((r) => [r.refundId, r.status])).toEqual([
      [first, 'SUCCEEDED'],
      [second, 'APPROVED'],
    ]);
    expect(await stock()).toEqual({ available: 8, reserved: 0, sold: 2 });
    expect((await system.paymentSim.request('GET', '/__admin/payments')).body.refunds.map((r: any) => r.amountCents)).toEqual([2_400]);

    // its parcel arrives: received once, as an existing warehouse reports it (no return id, a fresh `at`)
    expect((await warehouse(orderId, 'RETURN_RECEIVED')).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    await paidBack(orderId, second);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(4_800);
    expect(await stock()).toEqual({ available: 9, reserved: 0, sold: 1 });
  });

  it('a RETURN_RECEIVED naming its return receives that one: a re-report of an earlier one changes nothing, an unknown or foreign id is 404', async () => {
    const orderId = await delivered('hal', 2);
    const otherOrder = await delivered('ida', 1);
    const othersReturn = await returnOne('ida', otherOrder, 'wrong colour');
    const first = await returnOne('hal', orderId, 'one is chipped');
    await approve(orderId, first);
    const received = await warehouse(orderId, 'RETURN_RECEIVED', first);
    expect(received.body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    await paidBack(orderId, first);
    // the simulated warehouse sent the id it read off the parcel
    const sent = (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId).events.at(-1);
    expect(sent).toMatchObject({ event: 'RETURN_RECEIVED', returnId: first, status: 200 });

    const second = await returnOne('hal', orderId, 'too bright');
    await approve(orderId, second);
    // the first parcel reported again with a new time: only its id tells it apart from the second
    const again = await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId: first, at: new Date().toISOString() });
    expect([again.status, again.body]).toEqual([200, { changed: false, status: 'RETURNING' }]);
    for (const returnId of [`${orderId}-rf-unknown`, othersReturn]) {
      const refused = await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, at: new Date().toISOString() });
      expect([refused.status, refused.body.code]).toEqual([404, 'NOT_FOUND']);
    }
    const misplaced = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', returnId: second, at: new Date().toISOString() });
    expect([misplaced.status, misplaced.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await system.request('GET', '/docs/json')).body.paths['/v1/callbacks/warehouse'].post.requestBody.content['application/json'].schema.properties.returnId).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const waiting = await system.order(orderId);
    expect([waiting.status, waiting.amounts.refundedCents]).toEqual(['RETURNING', 2_400]);
    expect((await system.order(otherOrder)).status).toBe('RETURN_REQUESTED');

    // the second parcel, named: the order's last unit is back, the order is RETURNED with its shipping refunded
    expect((await warehouse(orderId, 'RETURN_RECEIVED', second)).body.callbackStatus).toBe(200);
    const returned = await system.waitForStatus(orderId, 'RETURNED');
    expect(returned.amounts.refundedCents).toBe(4_800 + 500);
    await paidBack(orderId, second);
  });

  it('a parcel received before its return was approved is taken when the warehouse retries it after the approval, with its first `at`', async () => {
    const orderId = await delivered('joy', 2);
    const first = await returnOne('joy', orderId, 'one is chipped');
    // refused 409 for now ("not yet"): the simulated warehouse retries the same body until it is acknowledged
    const early = warehouse(orderId, 'RETURN_RECEIVED');
    await waitFor(async () => (await returnsOf(orderId)).length === 1 && (await system.order(orderId)).status === 'RETURN_REQUESTED', { what: 'the return under review', timeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await approve(orderId, first);
    expect((await early).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    await paidBack(orderId, first);
    expect((await system.order(orderId)).amounts.refundedCents).toBe(2_400);
  });

  // the warehouse's clock and the api hosts' may differ by minutes (callbacks are taken up to CALLBACK_REPLAY_WINDOW_MS
  // apart): a receipt is told from a repeat by the warehouse's own times, never by a return's creation on an api host
  it("a repeat of an earlier return's receipt stays a repeat, and a later return's own receipt is taken, whatever the clocks of the warehouse and of the api host that opened the return", async () => {
    const skews = [
      { buyer: 'kai', warehouseAheadMs: 5 * 60_000, apiAheadMs: 0 },
      { buyer: 'lea', warehouseAheadMs: 0, apiAheadMs: -10 * 60_000 },
      { buyer: 'max', warehouseAheadMs: 0, apiAheadMs: 10 * 60_000 },
    ];
    for (const { buyer, warehouseAheadMs, apiAheadMs } of skews) {
      const skewed = await startApi(system.env, { clock: () => new Date(Date.now() + apiAheadMs) });
      try {
        const orderId = await delivered(buyer, 2);
        const first = await returnOne(buyer, orderId, 'first lamp');
        await approve(orderId, first);
        const firstReceipt = { orderId, event: 'RETURN_RECEIVED', at: new Date(Date.now() + warehouseAheadMs).toISOString() };
        expect((await system.signedCallback('warehouse', firstReceipt)).body.changed).toBe(true);
        await system.waitForStatus(orderId, 'DELIVERED');
        const asked = await skewed.request('POST', `/v1/orders/${orderId}/returns`, { token: skewed.token(buyer), body: { reason: 'second lamp', items: [{ skuId: 'LAMP', qty: 1 }] } });
        expect(asked.status).toBe(202);
        await approve(orderId, asked.body.returnId);
        // the first receipt sent again (its answer lost), with its first `at`: nothing of the second return moves
        const repeated = await system.signedCallback('warehouse', firstReceipt);
        expect([repeated.status, repeated.body.changed], `${buyer}: the repeat`).toEqual([200, false]);
        const waiting = await system.order(orderId);
        expect([waiting.status, waiting.items[0].refundedQty], `${buyer}: the second lamp not back yet`).toEqual(['RETURNING', 1]);
        // the second lamp's own receipt, later by the warehouse's clock: taken
        const second = { orderId, event: 'RETURN_RECEIVED', at: new Date(Date.now() + warehouseAheadMs + 1_000).toISOString() };
        expect((await system.signedCallback('warehouse', second)).body.changed, `${buyer}: the second lamp's receipt`).toBe(true);
        await paidBack(orderId, asked.body.returnId);
        expect((await system.order(orderId)).status).toBe('RETURNED');
      } finally {
        await skewed.close();
      }
    }
  });

  it('the parcel of a return refused, sent back all the same, is counted and logged for staff, as a closed return\'s is: nothing is paid back', async () => {
    const counted = async () => Number(/^return_parcels_after_close_total(?:\{[^}]*\})? (\S+)$/m.exec((await system.request('GET', '/metrics')).body)?.[1] ?? 0);
    const orderId = await delivered('ned', 1);
    const refused = await returnOne('ned', orderId, 'changed my mind');
    const answer = await system.request('POST', `/v1/orders/${orderId}/returns/${refused}/refuse`, { token: merchant });
    expect(answer.body.status).toBe('REFUSED');
    for (const returnId of [refused, undefined]) {
      const before = await counted();
      expect((await warehouse(orderId, 'RETURN_RECEIVED', returnId)).body.callbackStatus).toBe(200);
      expect(await counted(), returnId ? 'named' : 'naming no return').toBe(before + 1);
    }
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents]).toEqual(['DELIVERED', 0]);
  });
});
