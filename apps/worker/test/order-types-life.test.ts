import { CatalogRepository, CouponRepository, StockLedgerRepository } from '@orders/persistence';
import { buyerAddress, waitFor } from '@orders/testing';
import { StockReconciler, closeUnpaidOrder } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The lives of the order types a SKU sells in (presale, virtual), from the checkout on, with
 * the stock counters an operator reads at each step; and the late payment; over the real
 * payment and warehouse simulators.
 */
describe('every order type lives its own life', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('order_types_life', { PRESALE_DEPOSIT_PERCENT: '20', PRESALE_BALANCE_TIMEOUT_MS: '1500', AFTER_SALES_WINDOW_MS: '200', RECONCILE_INTERVAL_MS: '0' });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
    await system.createSku({ ...sku, skuId: 'CONSOLE', priceCents: 50_000, stock: 10 });
    await system.createSku({ ...sku, skuId: 'NEXT-CONSOLE', priceCents: 50_000, stock: 10, orderType: 'presale' });
    await system.createSku({ ...sku, skuId: 'NEXT-HEADSET', priceCents: 20_000, stock: 5, orderType: 'presale' });
    await system.createSku({ ...sku, skuId: 'NEXT-WATCH', priceCents: 30_000, stock: 3, orderType: 'presale' });
    await system.createSku({ ...sku, skuId: 'NEXT-CAMERA', priceCents: 80_000, stock: 4, orderType: 'presale' });
    await system.createSku({ ...sku, skuId: 'GIFT-CARD', priceCents: 2_500, warehouseId: 'digital', stock: 100, orderType: 'virtual' });
  });
  afterAll(async () => system?.close());

  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const stock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: system.token('ops', 'admin') })).body.stock;
  const ledgerOf = async (orderId: string) =>
    (await system.env.db.selectFrom('stock_ledger').select(['kind', 'qty', 'reason']).where('order_id', '=', orderId).orderBy('id').execute()).map((row) => [row.kind, Number(row.qty), row.reason]);

  it('a presale checkout holds a console from its 20% deposit until the balance is paid, and the console is sold when it ships', async () => {
    const orderId = await system.checkout('eve', [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect(pending.type).toBe('presale');
    // the buyer's retry with the same Idempotency-Key is the same order, holding the same console
    expect(await system.checkout('eve', [{ skuId: 'NEXT-CONSOLE', qty: 1 }])).toBe(orderId);
    expect(await stock('NEXT-CONSOLE')).toEqual({ available: 9, reserved: 1, sold: 0 });
    const deposit = await pay(orderId, 'eve');
    expect(deposit.body).toMatchObject({ purpose: 'deposit', amountCents: 10_000 });
    const depositPaid = await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    expect(depositPaid.buyerStatus).toBe('To pay balance');
    // its payment deadline job comes while it waits for the balance: nothing to expire, nothing released
    expect(await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' })).toEqual({ changed: false });
    expect(await stock('NEXT-CONSOLE')).toEqual({ available: 9, reserved: 1, sold: 0 });
    const balance = await pay(orderId, 'eve');
    expect(balance.body).toMatchObject({ purpose: 'balance', amountCents: 40_000 });
    const inFulfilment = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(inFulfilment.history.map((h: { action: string }) => h.action)).toEqual(['checkout', 'persist', 'pay_deposit', 'pay', 'fulfil']);
    expect(await stock('NEXT-CONSOLE')).toEqual({ available: 9, reserved: 0, sold: 1 });
    const charged = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.filter((p: { orderId: string }) => p.orderId === orderId);
    expect(charged.map((p: { amountCents: number; charges: number }) => [p.amountCents, p.charges])).toEqual([
      [10_000, 1],
      [40_000, 1],
    ]);
  });

  it('a presale whose balance is not paid within its 1.5 s deadline keeps the deposit and puts the headset back on sale, in Redis and in the ledger', async () => {
    const orderId = await system.checkout('fay', [{ skuId: 'NEXT-HEADSET', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    await pay(orderId, 'fay');
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    expect(await stock('NEXT-HEADSET')).toEqual({ available: 4, reserved: 1, sold: 0 });
    const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', 10_000);
    expect(forfeited.buyerStatus).toBe('Closed');
    expect(forfeited.history.at(-1)).toMatchObject({ from: 'DEPOSIT_PAID', action: 'expire_balance', to: 'DEPOSIT_FORFEITED', actor: 'system' });
    await expect.poll(() => stock('NEXT-HEADSET')).toEqual({ available: 5, reserved: 0, sold: 0 });
    expect(await ledgerOf(orderId)).toEqual([
      ['reserve', -1, 'checkout'],
      ['release', 1, 'expire_balance'],
    ]);
    const balance = await pay(orderId, 'fay');
    expect([balance.status, balance.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    // all 5 headsets sell again
    expect(await system.checkout('gil', [{ skuId: 'NEXT-HEADSET', qty: 5 }])).toEqual(expect.any(String));
    expect(await stock('NEXT-HEADSET')).toEqual({ available: 0, reserved: 5, sold: 0 });
  });

  it('a presale cancelled before its deposit gives the watch back', async () => {
    const orderId = await system.checkout('hugo', [{ skuId: 'NEXT-WATCH', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    expect(await stock('NEXT-WATCH')).toEqual({ available: 2, reserved: 1, sold: 0 });
    const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('hugo'), body: { reason: 'changed my mind' } });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'CANCELLED']);
    expect(await stock('NEXT-WATCH')).toEqual({ available: 3, reserved: 0, sold: 0 });
    expect(await ledgerOf(orderId)).toEqual([
      ['reserve', -1, 'checkout'],
      ['release', 1, 'cancel'],
    ]);
  });

  it('the stock repair brings back lost counters of a presale SKU as a presale SKU’s, the camera a presale holds still reserved', async () => {
    const { redis, db } = system.env;
    const held = await system.checkout('ida', [{ skuId: 'NEXT-CAMERA', qty: 1 }]);
    await system.waitForStatus(held, 'PENDING_DEPOSIT');
    await redis.del(`${system.env.config.REDIS_KEY_PREFIX}{g0}:sku:NEXT-CAMERA`);
    const reconciler = new StockReconciler(
      { redis, inventory: system.workers.deps.inventory, ledger: new StockLedgerRepository(db), catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log: pino({ level: 'silent' }) },
      { settleMs: 100 },
    );
    const report = await reconciler.reconcile({ repair: true });
    expect(report.drift.map((drift) => [drift.skuId, drift.missing])).toEqual([['NEXT-CAMERA', true]]);
    expect(await stock('NEXT-CAMERA')).toEqual({ available: 3, reserved: 1, sold: 0 });
    // sold in presale orders still: on its own it makes one, with a standard SKU it is refused
    const next = await system.checkout('jo', [{ skuId: 'NEXT-CAMERA', qty: 1 }]);
    expect((await system.order(next)).type).toBe('presale');
    const mixed = await system.request('POST', '/v1/orders', {
      token: system.token('jo'),
      headers: { 'idempotency-key': 'jo-camera-and-console' },
      body: { items: [{ skuId: 'NEXT-CAMERA', qty: 1 }, { skuId: 'CONSOLE', qty: 1 }], address: buyerAddress },
    });
    expect([mixed.status, mixed.body.code]).toEqual([422, 'ORDER_TYPE_MISMATCH']);
    expect(await stock('NEXT-CAMERA')).toEqual({ available: 2, reserved: 2, sold: 0 });
    // nothing differs from the ledger once both are in MySQL
    await system.waitForStatus(next, 'PENDING_DEPOSIT');
    expect((await reconciler.reconcile({ repair: false })).drift).toEqual([]);
  });

  it('a virtual checkout is delivered by its payment and completes without a shipment, its gift cards sold', async () => {
    const orderId = await system.checkout('gus', [{ skuId: 'GIFT-CARD', qty: 2 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect(pending.type).toBe('virtual');
    expect(await stock('GIFT-CARD')).toEqual({ available: 98, reserved: 2, sold: 0 });
    await pay(orderId, 'gus');
    const done = await system.waitForStatus(orderId, 'COMPLETED');
    expect(done.history.map((h: { action: string; actor: string }) => `${h.action}/${h.actor}`)).toEqual(['checkout/buyer', 'persist/system', 'pay/payment', 'deliver/system']);
    expect(done.shipments).toEqual([]);
    expect(await stock('GIFT-CARD')).toEqual({ available: 98, reserved: 0, sold: 2 });
    expect((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.map((o: { orderId: string }) => o.orderId)).not.toContain(orderId);
  });

  it('a payment that arrives after its order expired is recorded and refunded, and the order stays expired', async () => {
    const orderId = await system.checkout('hal', [{ skuId: 'CONSOLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the payment system is slow today: 600 ms to take the money, 600 more to call back
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 600 } });
    try {
      await pay(orderId, 'hal');
      await waitFor(async () => (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.some((p: { orderId: string }) => p.orderId === orderId), {
        what: 'the charge',
        timeoutMs: 5_000,
        intervalMs: 20,
      });
      await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system', detail: 'payment deadline passed' });
      const refunded = await waitFor(async () => {
        const sim = (await system.paymentSim.request('GET', '/__admin/payments')).body;
        return sim.refunds.find((r: { paymentId: string }) => r.paymentId.startsWith(orderId));
      });
      expect(refunded.amountCents).toBe(50_000);
      const order = await waitFor(async () => {
        const current = await system.order(orderId);
        return current.amounts.refundedCents === 50_000 && current;
      });
      expect(order.status).toBe('EXPIRED');
      expect(order.history.map((h: { action: string }) => h.action)).toEqual(['checkout', 'persist', 'expire']);
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
  });
});
