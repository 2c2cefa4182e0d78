import { OrderRepository } from '@orders/persistence';
import { buyerAddress, ledgerAvailable, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('payment-time deduction', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('payment_deduction', { WAREHOUSE_SIM_STEP_MS: '0' });
    // plenty-of-stock SKUs are only checked at checkout and deducted when paid
    await system.createSku({ skuId: 'LAST-CHAIR', priceCents: 12_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
  });
  afterAll(async () => system?.close());

  it('two buyers race for the last unit and both pay: one is paid and shipped, the other refunded and closed; stock never negative', async () => {
    const [first, second] = [await system.checkout('ann', [{ skuId: 'LAST-CHAIR', qty: 1 }]), await system.checkout('ben', [{ skuId: 'LAST-CHAIR', qty: 1 }])];
    await Promise.all([system.waitForStatus(first, 'PENDING_PAYMENT'), system.waitForStatus(second, 'PENDING_PAYMENT')]);
    const admin = system.token('ops', 'admin');
    expect((await system.request('GET', '/v1/admin/skus/LAST-CHAIR', { token: admin })).body.stock).toEqual({ available: 1, reserved: 0, sold: 0 });

    // both pay while the chair is on sale: the pay route lets both through, the commits at payment decide
    expect((await system.payInRace({ orderId: first, buyer: 'ann' }, { orderId: second, buyer: 'ben', method: 'wallet' })).status).toBe(202);

    const settled = async (orderId: string) => {
      for (let i = 0; i < 300; i++) {
        const order = await system.order(orderId);
        if (['IN_FULFILLMENT', 'REFUNDED'].includes(order.status)) return order;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`order ${orderId} did not settle`);
    };
    const outcomes = await Promise.all([settled(first), settled(second)]);
    const winner = outcomes.find((o) => o.status === 'IN_FULFILLMENT');
    const loser = outcomes.find((o) => o.status === 'REFUNDED');
    expect(winner).toBeDefined();
    expect(loser).toBeDefined();
    expect(loser.buyerStatus).toBe('Closed');
    expect(loser.amounts.refundedCents).toBe(12_000);
    expect(loser.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`).slice(-3)).toEqual(['pay/payment', 'refund/system', 'refund_succeeded/payment']);

    // the winner ships
    const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${winner.orderId}/events`, { body: { event: 'SHIPPED' } });
    expect(shipped.body.callbackStatus).toBe(200);
    expect((await system.order(winner.orderId)).status).toBe('SHIPPED');

    expect((await system.request('GET', '/v1/admin/skus/LAST-CHAIR', { token: admin })).body.stock).toEqual({ available: 0, reserved: 0, sold: 1 });
    expect(await ledgerAvailable(system.env.db, 'LAST-CHAIR')).toBe(0);
    const sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(sim.payments).toHaveLength(2);
    expect(sim.refunds).toEqual([expect.objectContaining({ paymentId: expect.stringContaining(loser.orderId), amountCents: 12_000 })]);
  });

  it('gives the refunded buyer their coupon back, so their next order gets its discount again', async () => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAST-HAT', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    await system.createSku({ skuId: 'SCARF', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const withCoupon = (key: string, skuId: string) =>
      system.request('POST', '/v1/orders', {
        token: system.token('ivy'),
        headers: { 'idempotency-key': key },
        body: { items: [{ skuId, qty: 1 }], address: buyerAddress, couponCode: 'ONCE' },
      });

    const lost = await withCoupon('ivy-1', 'LAST-HAT');
    expect(lost.status).toBe(202);
    const won = await system.checkout('jo', [{ skuId: 'LAST-HAT', qty: 1 }]);
    await Promise.all([system.waitForStatus(lost.body.orderId, 'PENDING_PAYMENT'), system.waitForStatus(won, 'PENDING_PAYMENT')]);
    // both pay while the last hat is on sale; the other buyer's payment takes it first
    expect((await system.payInRace({ orderId: won, buyer: 'jo' }, { orderId: lost.body.orderId, buyer: 'ivy' })).status).toBe(202);
    expect((await system.waitForStatus(lost.body.orderId, 'REFUNDED')).amounts.refundedCents).toBe(3_700);

    const redemptions = await system.env.db.selectFrom('coupon_redemptions').select(['status']).where('order_id', '=', lost.body.orderId).execute();
    expect(redemptions).toEqual([{ status: 'restored' }]);
    const next = await withCoupon('ivy-2', 'SCARF');
    expect(next.status).toBe(202);
    expect((await system.waitForStatus(next.body.orderId, 'PENDING_PAYMENT')).benefits.coupon).toEqual({ code: 'ONCE', discountCents: 300 });
  });

  it('refunds the buyer and puts their lamps back when the worker died right after committing the sold-out refund', async () => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAST-GLOBE', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    await system.createSku({ skuId: 'LAMP', priceCents: 500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const ben = await system.checkout('ben', [{ skuId: 'LAST-GLOBE', qty: 1 }, { skuId: 'LAMP', qty: 2 }]);
    const amy = await system.checkout('amy', [{ skuId: 'LAST-GLOBE', qty: 1 }]);
    await Promise.all([system.waitForStatus(ben, 'PENDING_PAYMENT'), system.waitForStatus(amy, 'PENDING_PAYMENT')]);
    // both pay while the globe is on sale; Ben's settle job waits while what its first run
    // committed is put in place: the refund (the units and the coupon released in MySQL), and
    // nothing after it, as a worker SIGKILLed just before enqueuing the refund left it; the job
    // then runs again, Amy's commit taking the globe
    const fulfillment = system.workers.workers.find((worker) => worker.name === 'fulfillment')!;
    await fulfillment.pause();
    try {
      expect((await system.request('POST', `/v1/orders/${amy}/pay`, { token: system.token('amy'), body: { method: 'card' } })).status).toBe(202);
      expect((await system.request('POST', `/v1/orders/${ben}/pay`, { token: system.token('ben'), body: { method: 'card' } })).status).toBe(202);
      await Promise.all([system.waitForStatus(amy, 'PAID'), system.waitForStatus(ben, 'PAID')]);
      await system.workers.deps.orders.applyTransition({
        orderId: ben,
        action: 'refund',
        actor: 'system',
        detail: 'SKU LAST-GLOBE sold out before the payment',
        at: new Date(),
        effects: async (trx, current) => OrderRepository.releaseReservation(trx, current.order_id, 'refund', new Date()),
      });
    } finally {
      await fulfillment.resume();
    }

    await system.waitForStatus(amy, 'IN_FULFILLMENT');
    const refunded = await system.waitForStatus(ben, 'REFUNDED');
    expect([refunded.shipments, refunded.amounts.refundedCents]).toEqual([[], 2_000]);
    // given back on its lines too, by what each paid, no unit counted (none was sold): each merchant's view adds up
    expect(refunded.items.map((item: { skuId: string; refundedQty: number; refundedCents: number }) => [item.skuId, item.refundedQty, item.refundedCents])).toEqual([['LAST-GLOBE', 0, 1_000], ['LAMP', 0, 1_000]]);
    const sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
    expect(sim.refunds.filter((refund: { paymentId: string }) => refund.paymentId.startsWith(ben))).toEqual([expect.objectContaining({ amountCents: 2_000 })]);
    expect((await system.request('GET', '/v1/admin/skus/LAMP', { token: admin })).body.stock).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect(await ledgerAvailable(system.env.db, 'LAMP')).toBe(10);
  });

  it("counts on the lines of an order given back whole only what paid for them: a late payment due back beside it, its own refund job lost, goes back on the order alone", async () => {
    await system.createSku({ skuId: 'LAST-URN', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    await system.createSku({ skuId: 'CANDLE', priceCents: 500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const cal = await system.checkout('cal', [{ skuId: 'LAST-URN', qty: 1 }, { skuId: 'CANDLE', qty: 2 }]);
    const dee = await system.checkout('dee', [{ skuId: 'LAST-URN', qty: 1 }]);
    await Promise.all([system.waitForStatus(cal, 'PENDING_PAYMENT'), system.waitForStatus(dee, 'PENDING_PAYMENT')]);

    // Cal's first attempt: the payment system takes a cent more than asked, its callback held back
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { amountSkewCents: 1, callbacksLost: true } });
    expect((await system.request('POST', `/v1/orders/${cal}/pay`, { token: system.token('cal'), body: { method: 'card' } })).status).toBe(202);
    const charge = await waitFor(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.payments as Array<{ orderId: string; paymentId: string; transactionId: string; at: string }>).find((one) => one.orderId === cal), { what: "Cal's first charge" });
    const { payments } = system.workers.deps.queues;
    const paymentsWorker = system.workers.workers.find((worker) => worker.name === payments.name)!;
    await paymentsWorker.pause();
    try {
      // its callback lands: recorded, due back whole; the job giving it back is lost (the api died after the commit)
      expect((await system.signedCallback('payment', { orderId: cal, paymentId: charge.paymentId, transactionId: charge.transactionId, status: 'SUCCEEDED', amountCents: 2_001, at: charge.at })).status).toBe(200);
      for (const job of await payments.getJobs(['waiting', 'delayed', 'prioritized'])) if (job.data.orderId === cal) await job.remove();
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { amountSkewCents: 0, callbacksLost: false } });
    } finally {
      paymentsWorker.resume();
    }

    // Cal pays again, rightly, as Dee does: Dee's payment takes the urn first, so both of Cal's go back whole
    expect((await system.payInRace({ orderId: dee, buyer: 'dee' }, { orderId: cal, buyer: 'cal' })).status).toBe(202);
    const refunded = await system.waitForStatus(cal, 'REFUNDED', 30_000);
    expect(refunded.amounts.refundedCents).toBe(4_001);
    expect(refunded.items.map((item: { skuId: string; payableCents: number; refundedCents: number }) => [item.skuId, item.payableCents, item.refundedCents])).toEqual([['LAST-URN', 1_000, 1_000], ['CANDLE', 1_000, 1_000]]);
  });

  it('pays back all of a sold-out order when the buyer asks for some of it back between the verdict and its refund, stock put back meanwhile', async () => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'LAST-VASE', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 2, deduction: 'payment' });
    const dan = await system.checkout('dan', [{ skuId: 'LAST-VASE', qty: 2 }]);
    const eli = await system.checkout('eli', [{ skuId: 'LAST-VASE', qty: 2 }]);
    await Promise.all([system.waitForStatus(dan, 'PENDING_PAYMENT'), system.waitForStatus(eli, 'PENDING_PAYMENT')]);

    // both pay while the vases are on sale, Eli's payment taking them first; Dan's settle job finds the vases gone, and is held there until the buyer has asked for one back
    const { inventory } = system.workers.deps;
    const commitStock = inventory.commitStock.bind(inventory);
    let verdict!: () => void;
    const asked = new Promise<void>((resolve) => (verdict = resolve));
    let found: (() => void) | undefined;
    const foundGone = new Promise<void>((resolve) => (found = resolve));
    inventory.commitStock = async (orderId) => {
      const outcome = await commitStock(orderId);
      if (orderId === dan && outcome.status === 'gone') {
        found?.();
        await asked;
      }
      return outcome;
    };
    try {
      expect((await system.payInRace({ orderId: eli, buyer: 'eli' }, { orderId: dan, buyer: 'dan' })).status).toBe(202);
      await foundGone;
      // a merchant puts 5 vases on sale, and Dan asks for one of his two back
      expect((await system.request('PUT', '/v1/admin/skus/LAST-VASE/stock', { token: admin, body: { stock: 5 } })).status).toBe(200);
      const one = await system.request('POST', `/v1/orders/${dan}/refunds`, { token: system.token('dan'), body: { reason: 'one is enough', items: [{ skuId: 'LAST-VASE', qty: 1 }] } });
      expect([one.status, one.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    } finally {
      verdict();
      inventory.commitStock = commitStock;
    }

    const refunded = await system.waitForStatus(dan, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(3_000);
    await expect
      .poll(async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ paymentId: string; amountCents: number }>).filter((refund) => refund.paymentId.startsWith(dan)).map((refund) => refund.amountCents), { timeout: 15_000 })
      .toEqual([3_000]);
    // Eli's two sold, the merchant's five on sale, none of Dan's
    expect((await system.request('GET', '/v1/admin/skus/LAST-VASE', { token: admin })).body.stock).toEqual({ available: 5, reserved: 0, sold: 2 });
  });
});
