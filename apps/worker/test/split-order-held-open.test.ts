import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A split order held REFUNDING after its last refund was paid back and its children closed: a
 * child's step that raced the refund's confirmation left it so before refundsOwedNow, and nothing
 * that runs on the order's own steps would move it again. The overdue sweep closes it.
 */
describe('a split order held open with nothing owed', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('split_order_held_open', { OVERDUE_SWEEP_INTERVAL_MS: '500', REFUND_CONFIRMATION_WAIT_MS: '1000' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 400, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-north', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  it('is closed by the overdue sweep as its children give it, and says why in its history', async () => {
    const { orderId, children } = await system.paidAndSplit('kim', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    // as the race left it: every child refunded, the buyer owed nothing, the order REFUNDING since a while ago
    const { db } = system.env;
    await db.updateTable('orders').set({ status: 'REFUNDED' }).where('order_id', 'in', children).execute();
    await db
      .updateTable('orders')
      .set({ status: 'REFUNDING', updated_at: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 1 MINUTE`, version: (eb) => eb('version', '+', 1) })
      .where('order_id', '=', orderId)
      .execute();

    await system.waitForStatus(orderId, 'REFUNDED', 15_000);
    const last = (await system.order(orderId)).history.at(-1);
    expect({ from: last.from, to: last.to, action: last.action }).toEqual({ from: 'REFUNDING', to: 'REFUNDED', action: 'refund_succeeded' });
  });

  it('leaves a split order REFUNDING while a child is owed its refund', async () => {
    const { orderId, children } = await system.paidAndSplit('lee', [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    const { db } = system.env;
    const owedChild = children[0]!;
    // its refund waits for the warehouse to take its units out of the parcel: owed, and not paid meanwhile
    await db.updateTable('orders').set({ status: 'REFUNDING', version: (eb) => eb('version', '+', 1) }).where('order_id', '=', owedChild).execute();
    await db
      .insertInto('refunds')
      .values({ refund_id: `${owedChild}-held`, order_id: owedChild, kind: 'refund', status: 'PENDING', version: 1, reason: 'test', amount_cents: 100, items: '[]', restock_held_reason: 'refund', created_at: new Date(), updated_at: new Date() })
      .execute();
    await db
      .updateTable('orders')
      .set({ status: 'REFUNDING', updated_at: sql<Date>`UTC_TIMESTAMP(3) - INTERVAL 1 MINUTE`, version: (eb) => eb('version', '+', 1) })
      .where('order_id', '=', orderId)
      .execute();

    // eight sweeps
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect([(await system.order(orderId)).status, (await system.order(owedChild)).status]).toEqual(['REFUNDING', 'REFUNDING']);
  });
});
