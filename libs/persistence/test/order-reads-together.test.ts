import { OrderRepository, ProcessRepository } from '@orders/persistence';
import { createTestEnv, persistLampOrder, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The reads the payment's steps make of an order, each sent as one query (bench/README item 52):
 * they answer what the reads they replaced answered, one after the other.
 */
describe("an order's rows read together", () => {
  let env: TestEnv;
  let orders: OrderRepository;
  let process: ProcessRepository;
  const orderId = (n: number) => `01KREADTOG${String(n).padStart(16, '0')}`;
  const at = new Date(Date.UTC(2026, 11, 7));
  const payment = (n: number, attempt: number) => ({
    payment_id: `${orderId(n)}-full-${attempt}`,
    order_id: orderId(n),
    purpose: 'full',
    attempt,
    method: 'card',
    amount_cents: 2_500,
    status: 'PENDING',
    transaction_id: null,
    paid_at: null,
    created_at: at,
    updated_at: at,
  });

  beforeAll(async () => {
    env = await createTestEnv('order_reads_together');
    orders = new OrderRepository(env.db);
    process = new ProcessRepository(env.db);
    for (const n of [1, 2, 3]) await persistLampOrder(orders, '01KREADTOG', n);
    await env.db.insertInto('payments').values([payment(1, 1), payment(2, 1)]).execute();
  });
  afterAll(async () => env?.cleanup());

  it("reads an order with one of its payments, and no payment of another order under that order's name", async () => {
    const own = await process.orderAndPayment(orderId(1), payment(1, 1).payment_id);
    expect(own).toEqual({ order: await orders.findOrderRow(orderId(1)), payment: await process.findPayment(payment(1, 1).payment_id) });
    expect(own.payment).toMatchObject({ order_id: orderId(1), amount_cents: 2_500 });

    expect(await process.orderAndPayment(orderId(1), payment(2, 1).payment_id)).toEqual({ order: own.order, payment: null });
    expect(await process.orderAndPayment(orderId(9), payment(1, 1).payment_id)).toEqual({ order: null, payment: null });
  });

  it('reads an order with its lines, as of one version, as the row and the lines read apart', async () => {
    const apart = { order: await orders.findOrderRow(orderId(1)), items: await process.items(orderId(1)) };
    expect(apart.items).toHaveLength(1);
    expect(await process.orderWithLines(orderId(1))).toEqual(apart);
    expect(await process.orderAndLinesOfOneVersion(orderId(1))).toEqual(apart);
    expect(await process.orderWithLines(orderId(9))).toBeNull();
    expect(await process.orderAndLinesOfOneVersion(orderId(9))).toBeNull();
  });

  it('answers a payment it opens as MySQL holds it, without reading it back', async () => {
    const { payment, created } = await process.openPayment({ orderId: orderId(3), purpose: 'full', method: 'wallet', amountCents: 2_500, at: new Date('2026-12-07T07:30:00.123Z') });
    expect(created).toBe(true);
    expect(payment).toEqual(await process.findPayment(`${orderId(3)}-full-1`));
    expect(payment).toMatchObject({ status: 'PENDING', attempt: 1, created_at: new Date('2026-12-07T07:30:00.123Z') });
  });

  it('tells a split order from an unsplit one and from its children', async () => {
    expect(await process.orderAndWhetherSplit(orderId(2))).toEqual({ order: await orders.findOrderRow(orderId(2)), splitParent: false });
    const parent = (await orders.findOrderRow(orderId(2)))!;
    await env.db.insertInto('orders').values({ ...parent, order_id: `${orderId(2)}-1`, parent_order_id: orderId(2) }).execute();
    expect(await process.orderAndWhetherSplit(orderId(2))).toMatchObject({ splitParent: true });
    expect(await process.orderAndWhetherSplit(`${orderId(2)}-1`)).toMatchObject({ order: { parent_order_id: orderId(2) }, splitParent: false });
    expect(await process.orderAndWhetherSplit(orderId(9))).toBeNull();
  });
});
