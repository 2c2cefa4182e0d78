// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { ledgerAvailable, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const step = (h: { from: string | null; action: string; to: string; actor: string }) => `${h.from} -${h.action}/${h.actor}-> ${h.to}`;

describe('the whole forward life of an order', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    // short timers; the warehouse advances only when the test sends its events. Auto-confirm comes 4 s after a
    // shipment: the test's own steps after one (the buyer's signature, the potter's DELIVERED) must come first even
    // on a loaded box (at 800 ms the timer could overtake them and confirm the parcel itself)
    system = await startOrderSystem('order_life', { AUTO_CONFIRM_MS: '4000', AFTER_SALES_WINDOW_MS: '300', WAREHOUSE_SIM_STEP_MS: '0' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 50, deduction: 'payment' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('pays, splits a 3-line order from two warehouses and both channels into 3 children, ships, delivers, confirms and completes it', async () => {
    const buyer = system.token('ada');
    const orderId = await system.checkout('ada', [
      { skuId: 'KETTLE', qty: 1 },
      { skuId: 'TEA', qty: 2 },
      { skuId: 'MUG', qty: 3 },
    ]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect(pending.amounts).toMatchObject({ subtotalCents: 9_196, payableCents: 9_196 });
    // written, the buyer's list holds it once, as MySQL has it
    const listed = await system.request('GET', '/v1/orders', { token: buyer });
    expect(listed.body.items.map((order: any) => [order.orderId, order.status])).toEqual([[orderId, 'PENDING_PAYMENT']]);

    // the payment system calls back 3 s after it charges: with none, the order was once paid before the buyer asked again (CI, 2026-12-04)
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 3_000 } });
    const pay = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: buyer, body: { method: 'card' } });
    expect(pay.status).toBe(202);
    expect(pay.body).toMatchObject({ orderId, purpose: 'full', amountCents: 9_196, status: 'PENDING' });
    // asking again while the payment is pending returns the same payment: one charge
    const again = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: buyer, body: { method: 'card' } });
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    expect([again.status, again.body.paymentId]).toEqual([202, pay.body.paymentId]);

    // paid, split per (channel, merchant, warehouse), every child handed to its warehouse
    const children = (await waitFor(
      async () => {
        const order = await system.order(orderId);
        if (order.subOrders.length !== 3) return false;
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.every((s) => s.status === 'IN_FULFILLMENT') ? subs : false;
      },
      { what: 'three children in fulfilment', timeoutMs: 15_000 },
    )) as any[];
    const parent = await system.order(orderId);
    expect(parent.status).toBe('IN_FULFILLMENT');
    expect(parent.payment).toMatchObject({ paymentId: pay.body.paymentId, method: 'card' });
    expect(parent.payment.transactionId).toMatch(/^txn_/);
    const byGroup = Object.fromEntries(children.map((c: any) => [`${c.items[0].channel}/${c.items[0].merchantId}/${c.items[0].warehouseId}`, c]));
    expect(Object.keys(byGroup).sort()).toEqual(['self/shop/wh-east', 'self/shop/wh-west', 'third_party/potter/wh-west']);
    const east = byGroup['self/shop/wh-east'];
    const west = byGroup['self/shop/wh-west'];
    const potter = byGroup['third_party/potter/wh-west'];
    expect([east.amounts.payableCents, west.amounts.payableCents, potter.amounts.payableCents]).toEqual([3_999, 2_500, 2_697]);
    expect(children.every((c: any) => c.parentOrderId === orderId && c.userId === 'ada')).toBe(true);

    // the east child: picked, packed, shipped, then the buyer signs for it
    for (const event of ['PICKED', 'PACKED', 'SHIPPED']) {
      const sent = await system.warehouseSim.request('POST', `/__admin/orders/${east.orderId}/events`, { body: { event } });
      expect(sent.body.callbackStatus).toBe(200);
    }
    expect(await system.workers.deps.queues.timers.getJob(`auto-confirm-${east.orderId}`)).toBeDefined();
    expect((await system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: buyer })).status).toBe(200);
    // signed for: its auto-confirm timer is gone rather than left in Redis for the rest of its days
    expect(await system.workers.deps.queues.timers.getJob(`auto-confirm-${east.orderId}`)).toBeUndefined();
    // the west child ships and the buyer stays silent: auto-confirm after 4 s
    await system.warehouseSim.request('POST', `/__admin/orders/${west.orderId}/events`, { body: { event: 'SHIPPED' } });
    // the potter's parcel goes all the way by the warehouse's own callbacks
    for (const event of ['PICKED', 'PACKED', 'SHIPPED', 'DELIVERED']) {
      await system.warehouseSim.request('POST', `/__admin/orders/${potter.orderId}/events`, { body: { event } });
    }

    // every child completes once its 300 ms after-sales window closes; so does the parent
    const completed = await system.waitForStatus(orderId, 'COMPLETED', 25_000);
    expect(completed.buyerStatus).toBe('Completed');
    expect(completed.history.map(step)).toEqual([
      'null -checkout/buyer-> ACCEPTED',
      'ACCEPTED -persist/system-> PENDING_PAYMENT',
      'PENDING_PAYMENT -pay/payment-> PAID',
      'PAID -split/system-> PAID',
      'PAID -fulfil/system-> IN_FULFILLMENT',
      expect.stringMatching(/^IN_FULFILLMENT -ship\/warehouse-> SHIPPED$/),
      expect.stringMatching(/^SHIPPED -(deliver\/warehouse|auto_confirm\/system|confirm_receipt\/buyer)-> DELIVERED$/),
      'DELIVERED -complete/system-> COMPLETED',
    ]);
    const eastDone = await system.order(east.orderId);
    expect(eastDone.history.map(step)).toEqual([
      'null -split/system-> PAID',
      'PAID -fulfil/system-> IN_FULFILLMENT',
      'IN_FULFILLMENT -pick/warehouse-> IN_FULFILLMENT',
      'IN_FULFILLMENT -pack/warehouse-> IN_FULFILLMENT',
      'IN_FULFILLMENT -ship/warehouse-> SHIPPED',
      'SHIPPED -confirm_receipt/buyer-> DELIVERED',
      'DELIVERED -complete/system-> COMPLETED',
    ]);
    expect((await system.order(west.orderId)).history.map(step)).toContain('SHIPPED -auto_confirm/system-> DELIVERED');
    const potterDone = await system.order(potter.orderId);
    expect(potterDone.history.map(step)).toContain('SHIPPED -deliver/warehouse-> DELIVERED');
    expect(potterDone.shipments).toEqual([expect.objectContaining({ warehouseId: 'wh-west', status: 'DELIVERED', trackingNo: expect.stringMatching(/^TRK-/) })]);

    // stock: sold, not reserved; the payment-time TEA was deducted at payment
    const admin = system.token('ops', 'admin');
    const stock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock;
    expect(await stock('KETTLE')).toEqual({ available: 9, reserved: 0, sold: 1 });
    expect(await stock('TEA')).toEqual({ available: 48, reserved: 0, sold: 2 });
    expect(await stock('MUG')).toEqual({ available: 17, reserved: 0, sold: 3 });
    expect(await ledgerAvailable(system.env.db, 'TEA')).toBe(48);
    // one charge at the payment system
    const charged = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments;
    expect(charged.map((p: { orderId: string; charges: number; amountCents: number }) => [p.orderId, p.charges, p.amountCents])).toEqual([[orderId, 1, 9_196]]);

    // the order centre: the buyer lists the order (its parts are subOrders), merchants their children, admins search
    const mine = (await system.request('GET', '/v1/orders?status=COMPLETED', { token: buyer })).body.items;
    expect(mine.map((o: { orderId: string }) => o.orderId)).toEqual([orderId]);
    // each listed order as GET /v1/orders/:id shows it: its payment, parts and history too
    expect(mine).toEqual([(await system.request('GET', `/v1/orders/${orderId}`, { token: buyer })).body]);
    expect(mine[0].subOrders).toHaveLength(3);
    const potterView = (await system.request('GET', '/v1/orders', { token: system.token('potter', 'merchant') })).body.items;
    expect(potterView.map((o: { orderId: string }) => o.orderId)).toEqual([potter.orderId]);
    const search = await system.request('GET', `/v1/admin/orders?parentOrderId=${orderId}&status=COMPLETED`, { token: admin });
    expect(search.body.items.map((o: { orderId: string }) => o.orderId).sort()).toEqual([east.orderId, west.orderId, potter.orderId].sort());
    expect((await system.request('GET', '/v1/admin/orders?skuId=MUG&topLevel=true', { token: admin })).body.items.map((o: { orderId: string }) => o.orderId)).toEqual([orderId]);
    expect((await system.request('GET', '/v1/admin/orders', { token: buyer })).status).toBe(403);
  });

  it('a payment callback sent 10 times at once changes the order once; a wrong signature is 401; an unknown order is 404', async () => {
    const orderId = await system.checkout('bob', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // a payment opened without asking the simulator, so only this test's callbacks settle it
    const { ProcessRepository } = await import('@orders/persistence');
    const { payment } = await new ProcessRepository(system.env.db).openPayment({ orderId, purpose: 'full', method: 'wallet', amountCents: 3_999, at: new Date() });
    const callback = { orderId, paymentId: payment.payment_id, transactionId: 'txn_once', status: 'SUCCEEDED', amountCents: 3_999, at: new Date().toISOString() };

    expect((await system.signedCallback('payment', callback, 'sha256=' + '0'.repeat(64))).status).toBe(401);
    expect((await system.signedCallback('payment', callback, 'garbage')).status).toBe(401);
    expect((await system.request('POST', '/v1/callbacks/payment', { body: callback })).status).toBe(401);
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');

    const answers = await Promise.all(Array.from({ length: 10 }, () => system.signedCallback('payment', callback)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(answers.filter((a) => a.body.changed === true)).toHaveLength(1);
    const paid = await system.order(orderId);
    expect(paid.history.filter((h: { action: string }) => h.action === 'pay')).toHaveLength(1);
    expect(paid.payment).toMatchObject({ transactionId: 'txn_once' });

    const unknown = await system.signedCallback('payment', { ...callback, orderId: '01JZZZZZZZZZZZZZZZZZZZZZZZ' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('NOT_FOUND');
    const unknownWarehouse = await system.signedCallback('warehouse', { orderId: '01JZZZZZZZZZZZZZZZZZZZZZZZ', event: 'SHIPPED', at: new Date().toISOString() });
    expect([unknownWarehouse.status, unknownWarehouse.body.code]).toEqual([404, 'NOT_FOUND']);
    // signed with the payment secret, sent to the warehouse endpoint: refused
    const crossSigned = await system.request('POST', '/v1/callbacks/warehouse', {
      body: JSON.stringify({ orderId, event: 'SHIPPED', at: new Date().toISOString() }),
      headers: { 'x-signature': 'sha256=' + 'a'.repeat(64) },
    });
    expect(crossSigned.status).toBe(401);
    // hex is hex in either case: a sender writing its signature in capitals is signed all the same
    const { createHmac } = await import('node:crypto');
    const raw = JSON.stringify({ orderId: '01JZZZZZZZZZZZZZZZZZZZZZZZ', event: 'SHIPPED', at: new Date().toISOString() });
    const capitals = await system.request('POST', '/v1/callbacks/warehouse', {
      body: raw,
      headers: { 'x-signature': `sha256=${createHmac('sha256', system.env.config.WAREHOUSE_CALLBACK_SECRET).update(raw).digest('hex').toUpperCase()}` },
    });
    expect([capitals.status, capitals.body.code]).toEqual([404, 'NOT_FOUND']);
  });

  it('refuses every action the order’s state does not allow with 409 ILLEGAL_TRANSITION and changes nothing', async () => {
    const buyer = system.token('cy');
    const orderId = await system.checkout('cy', [{ skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const confirm = await system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: buyer });
    expect([confirm.status, confirm.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const early = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    expect([early.status, early.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('someone-else'), body: { method: 'card' } })).status).toBe(404);
    const order = await system.order(orderId);
    expect(order.status).toBe('PENDING_PAYMENT');
    expect(order.history).toHaveLength(2);
  });

  it('delivers an order in fulfilment whose SHIPPED event the warehouse gave up sending: DELIVERED moves it on, its after-sales window runs, and a late SHIPPED gives the parcel its tracking number alone', async () => {
    const orderId = await system.checkout('dee', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('dee'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');

    const delivered = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    expect([delivered.status, delivered.body]).toEqual([200, { changed: true, status: 'DELIVERED' }]);
    const order = await system.waitForStatus(orderId, 'COMPLETED');
    expect(order.history.map(step).slice(-2)).toEqual(['IN_FULFILLMENT -deliver/warehouse-> DELIVERED', 'DELIVERED -complete/system-> COMPLETED']);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'DELIVERED' })]);
    const late = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-LATE', at: new Date().toISOString() });
    expect([late.status, late.body]).toEqual([200, { changed: true, status: 'COMPLETED' }]);
    const tracked = await system.order(orderId);
    expect([tracked.status, tracked.history.length, tracked.shipments]).toEqual(['COMPLETED', order.history.length, [expect.objectContaining({ status: 'DELIVERED', trackingNo: 'TRK-LATE' })]]);
    const shippedAt = await system.env.db.selectFrom('shipments').select('shipped_at').where('order_id', '=', orderId).executeTakeFirstOrThrow();
    expect(shippedAt.shipped_at).not.toBeNull();
    const repeat = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-OTHER', at: new Date().toISOString() });
    expect([repeat.status, repeat.body.changed, (await system.order(orderId)).shipments[0].trackingNo]).toEqual([200, false, 'TRK-LATE']);
  });

  it("keeps the carrier's delivery on the parcel of an order whose buyer confirmed its receipt first", async () => {
    const orderId = await system.shipped('eli', [{ skuId: 'KETTLE', qty: 1 }]);
    expect((await system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: system.token('eli') })).status).toBe(200);
    expect((await system.order(orderId)).shipments).toEqual([expect.objectContaining({ status: 'SHIPPED' })]);

    const delivered = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    // its 300 ms after-sales window may have closed by then (a slow box): completed, as it would be
    expect([delivered.status, delivered.body]).toEqual([200, { changed: true, status: expect.stringMatching(/^(DELIVERED|COMPLETED)$/) }]);
    const order = await system.order(orderId);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'DELIVERED' })]);
    // the order was delivered once, by the buyer
    expect(order.history.map(step).filter((taken: string) => taken.endsWith('-> DELIVERED'))).toEqual(['SHIPPED -confirm_receipt/buyer-> DELIVERED']);
    const repeat = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    expect([repeat.status, repeat.body.changed]).toEqual([200, false]);
  });

  it("records the hand-over of an order from its warehouse's first event, which came before the hand-over's own step: the parcel ships, once", async () => {
    // the worker's hand-over reached the warehouse, whose answer it never recorded: the warehouse goes down behind it
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    let orderId = '';
    try {
      orderId = await system.checkout('fay', [{ skuId: 'KETTLE', qty: 1 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('fay'), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');

      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-EARLY', at: new Date().toISOString() });
      expect([shipped.status, shipped.body]).toEqual([200, { changed: true, status: 'SHIPPED' }]);
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
    const order = await system.order(orderId);
    expect(order.history.map(step).slice(-2)).toEqual(['PAID -fulfil/system-> IN_FULFILLMENT', 'IN_FULFILLMENT -ship/warehouse-> SHIPPED']);
    expect(order.shipments).toEqual([expect.objectContaining({ status: 'SHIPPED', trackingNo: 'TRK-EARLY' })]);
    // its auto-confirm timer runs from the shipping
    await waitFor(async () => system.workers.deps.queues.timers.getJob(`auto-confirm-${orderId}`), { what: 'the auto-confirm timer' });
    // the hand-over job, run again once the warehouse is back, finds the order moved on: nothing is handed over twice
    const { fulfillment } = system.workers.deps.queues;
    await waitFor(
      async () => {
        const jobs = await fulfillment.getJobCounts('wait', 'delayed', 'active');
        return Object.values(jobs).every((count) => count === 0);
      },
      { what: 'the hand-over job to finish', timeoutMs: 30_000 },
    );
    expect((await system.order(orderId)).history.filter((h: { action: string }) => h.action === 'fulfil')).toHaveLength(1);
  });

  it('records a warehouse event that arrives while the order is being handed over, once, whichever commits first', async () => {
    const { ProcessRepository } = await import('@orders/persistence');
    const { IllegalTransition, StaleOrderVersion } = await import('@orders/domain');
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 30, deduction: 'placement' });
    // the worker cannot hand the orders over: this test commits each hand-over itself, while the warehouse's event is already coming
    await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: true } });
    try {
      const buyers = Array.from({ length: 24 }, (_, i) => `lamp-buyer-${i}`);
      const orderIds = await Promise.all(buyers.map((buyer) => system.checkout(buyer, [{ skuId: 'LAMP', qty: 1 }])));
      await Promise.all(orderIds.map((orderId) => system.waitForStatus(orderId, 'PENDING_PAYMENT')));
      await Promise.all(orderIds.map((orderId, i) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyers[i]!), body: { method: 'card' } })));
      await Promise.all(orderIds.map((orderId) => system.waitForStatus(orderId, 'PAID')));

      const answers = await Promise.all(
        orderIds.map(async (orderId, i) => {
          // the way the warehouse sends it: again and again while the order answers 409 (not reached yet)
          const picked = (async () => {
            const at = new Date().toISOString();
            for (;;) {
              const answer = await system.signedCallback('warehouse', { orderId, event: 'PICKED', at });
              if (answer.status !== 409) return answer;
            }
          })();
          await new Promise((resolve) => setTimeout(resolve, 5 + (i % 6) * 3));
          await system.workers.deps.orders
            .applyTransition({
              orderId,
              action: 'fulfil',
              actor: 'system',
              at: new Date(),
              detail: 'accepted by warehouse wh-east',
              effects: async (trx, current) => ProcessRepository.openShipment(trx, current, 'wh-east', new Date()),
            })
            // the event came first, and recorded the hand-over itself (the job's step, tried again, would find it so)
            .catch((error: unknown) => {
              if (!(error instanceof IllegalTransition || error instanceof StaleOrderVersion)) throw error;
            });
          return picked;
        }),
      );
      expect(answers.map((a) => [a.status, a.body.changed])).toEqual(orderIds.map(() => [200, true]));
      for (const orderId of orderIds) {
        const order = await system.order(orderId);
        expect(order.history.filter((h: { action: string }) => h.action === 'fulfil')).toHaveLength(1);
        expect(order.history.filter((h: { action: string }) => h.action === 'pick')).toHaveLength(1);
        expect(order.shipments).toEqual([expect.objectContaining({ status: 'PICKED' })]);
      }
    } finally {
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false } });
    }
  });
});
