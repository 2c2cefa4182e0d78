import { buyerAddress, ledgerAvailable } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('orders paid after Redis lost their reservations', () => {
  let system: OrderSystem;

  /** `npm run reconcile` as an operator runs it, in this process, on this test's database and key prefix. */
  const reconcile = (repair: boolean) => system.reconciler().reconcile({ repair });
  const loseRedisData = () => system.loseRedisData();
  const stock = (skuId: string) => system.stockOf(skuId);
  const checkout = (buyer: string, items: Array<{ skuId: string; qty: number }>, key: string, couponCode?: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items, address: buyerAddress, couponCode } });
  const pay = async (buyer: string, orderId: string) => {
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
  };
  const ofSkus = <T extends { skuId: string }>(rows: readonly T[], skuIds: readonly string[]) => rows.filter((row) => skuIds.includes(row.skuId));

  beforeAll(async () => {
    system = await startOrderSystem('payments_after_redis_loss', { RECONCILE_INTERVAL_MS: '0' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('sells the last chair once: the order paid after the repair takes it, the next buyer is refused, and the ledger agrees', async () => {
    await system.createSku({ skuId: 'CHAIR', priceCents: 12_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    const ann = (await checkout('ann', [{ skuId: 'CHAIR', qty: 1 }, { skuId: 'LAMP', qty: 2 }], 'ann-chair')).body.orderId as string;
    await system.waitForStatus(ann, 'PENDING_PAYMENT');

    await loseRedisData();
    await reconcile(true);
    expect([await stock('CHAIR'), await stock('LAMP')]).toEqual([
      { available: 1, reserved: 0, sold: 0 },
      { available: 8, reserved: 2, sold: 0 },
    ]);

    await pay('ann', ann);
    await system.waitForStatus(ann, 'IN_FULFILLMENT');
    const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${ann}/events`, { body: { event: 'SHIPPED' } });
    expect(shipped.body.callbackStatus).toBe(200);
    expect([await stock('CHAIR'), await stock('LAMP')]).toEqual([
      { available: 0, reserved: 0, sold: 1 },
      { available: 8, reserved: 0, sold: 2 },
    ]);
    expect(await ledgerAvailable(system.env.db, 'CHAIR')).toBe(0);

    const bob = await checkout('bob', [{ skuId: 'CHAIR', qty: 1 }], 'bob-chair');
    expect([bob.status, bob.body.code]).toEqual([409, 'OUT_OF_STOCK']);
    const report = await reconcile(false);
    expect([ofSkus(report.drift, ['CHAIR', 'LAMP']), ofSkus(report.oversold, ['CHAIR', 'LAMP'])]).toEqual([[], []]);
  });

  it('refunds an order whose payment-time desk was sold while Redis had lost its reservation, giving its lamps and its coupon back', async () => {
    await system.createSku({ skuId: 'DESK', priceCents: 20_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1, deduction: 'payment' });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 500, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const cal = (await checkout('cal', [{ skuId: 'DESK', qty: 1 }, { skuId: 'LAMP', qty: 2 }], 'cal-desk', 'ONCE')).body.orderId as string;
    await system.waitForStatus(cal, 'PENDING_PAYMENT');

    await loseRedisData();
    await reconcile(true);
    const before = await stock('LAMP');
    expect(before.reserved).toBe(2);

    // another buyer pays as Cal does, while the desk is on sale, and their payment takes the only desk
    const dan = (await checkout('dan', [{ skuId: 'DESK', qty: 1 }], 'dan-desk')).body.orderId as string;
    await system.waitForStatus(dan, 'PENDING_PAYMENT');
    expect((await system.payInRace({ orderId: dan, buyer: 'dan' }, { orderId: cal, buyer: 'cal' })).status).toBe(202);
    await system.waitForStatus(dan, 'IN_FULFILLMENT');
    const refunded = await system.waitForStatus(cal, 'REFUNDED', 30_000);
    expect([refunded.shipments, refunded.amounts.refundedCents]).toEqual([[], refunded.amounts.payableCents]);
    expect(await stock('DESK')).toEqual({ available: 0, reserved: 0, sold: 1 });
    expect(await stock('LAMP')).toEqual({ available: before.available + 2, reserved: 0, sold: before.sold });
    const again = await checkout('cal', [{ skuId: 'LAMP', qty: 1 }], 'cal-again', 'ONCE');
    expect(again.status).toBe(202);
    await system.waitForStatus(again.body.orderId as string, 'PENDING_PAYMENT');
    const report = await reconcile(false);
    expect([ofSkus(report.drift, ['DESK', 'LAMP']), ofSkus(report.oversold, ['DESK', 'LAMP'])]).toEqual([[], []]);
  });
});
