import { priceOrder, type AcceptedOrder, type Sku } from '@orders/domain';
import { OrderRepository } from '@orders/persistence';
import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const lamp: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null };

describe('a persisted batch of accepted orders', () => {
  let env: TestEnv;
  let orders: OrderRepository;

  beforeAll(async () => {
    env = await createTestEnv('accepted_order_times');
    orders = new OrderRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  it('keeps every order’s acceptance time, payment deadline and the batch’s write time to the millisecond', async () => {
    const now = new Date('2026-12-01T02:40:49.050Z');
    const accepted: AcceptedOrder[] = ['2026-12-01T02:40:48.007Z', '2026-12-01T02:40:48.123Z', '2026-12-01T02:40:48.123Z', '2026-11-30T23:59:59.999Z'].map((acceptedAt, i) => ({
      orderId: `01JTIMES00000000000000000${i}`,
      userId: `buyer-${i}`,
      type: 'standard',
      items: [{ skuId: 'LAMP', qty: 1 }],
      address: buyerAddress,
      couponCode: null,
      acceptedAt,
      paymentDeadline: new Date(Date.parse(acceptedAt) + 900_001).toISOString(),
    }));
    const written = await orders.persistAcceptedOrders(
      accepted.map((order) => ({ accepted: order, priced: priceOrder(order.items, new Map([['LAMP', lamp]]), new Date(order.acceptedAt)) })),
      now,
    );
    expect(written).toHaveLength(accepted.length);

    const rows = await env.db.selectFrom('orders').select(['order_id', 'accepted_at', 'payment_deadline', 'created_at', 'updated_at']).orderBy('order_id').execute();
    expect(rows.map((row) => ({ ...row, accepted_at: row.accepted_at.toISOString(), payment_deadline: row.payment_deadline.toISOString(), created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() }))).toEqual(
      accepted.map((order) => ({ order_id: order.orderId, accepted_at: order.acceptedAt, payment_deadline: order.paymentDeadline, created_at: now.toISOString(), updated_at: now.toISOString() })),
    );
    const history = await env.db.selectFrom('order_history').select(['order_id', 'version', 'at']).orderBy('order_id').orderBy('version').execute();
    expect(history.map((row) => [row.order_id, row.version, row.at.toISOString()])).toEqual(
      accepted.flatMap((order) => [
        [order.orderId, 0, order.acceptedAt],
        [order.orderId, 1, now.toISOString()],
      ]),
    );
  });
});
