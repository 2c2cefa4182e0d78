import { OrderRepository } from '@orders/persistence';
import { createTestEnv, persistLampOrder, writtenOrHeldUp, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe("a split order's child moving, beside the persist batches of a sale", () => {
  let env: TestEnv;
  let orders: OrderRepository;

  beforeAll(async () => {
    env = await createTestEnv('split_order_locks');
    orders = new OrderRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  /** Order ids grow with time, as the intake's do: each persisted one is the newest. */
  const orderId = (n: number) => `01KSPLIT00${String(n).padStart(16, '0')}`;
  const persist = (n: number) => persistLampOrder(orders, '01KSPLIT00', n);
  const status = async (id: string) => (await env.db.selectFrom('orders').select('status').where('order_id', '=', id).executeTakeFirstOrThrow()).status;

  it("holds up no batch writing new orders while its move's transaction re-derives its parent, the only order ever split", async () => {
    // the split order: PAID, its two children written as a split writes them
    await persist(1);
    await env.db.updateTable('orders').set({ status: 'PAID' }).where('order_id', '=', orderId(1)).execute();
    const parent = await env.db.selectFrom('orders').selectAll().where('order_id', '=', orderId(1)).executeTakeFirstOrThrow();
    const children = [`${orderId(1)}-1`, `${orderId(1)}-2`];
    for (const child of children) await env.db.insertInto('orders').values({ ...parent, order_id: child, parent_order_id: orderId(1), version: 1 }).execute();
    // another buyer's unpaid order, cancelled in the same transaction after the child moved
    await persist(2);

    let outcome: string | undefined;
    await orders.applyTransitions([
      { orderId: children[0]!, action: 'fulfil', actor: 'system', at: new Date() },
      {
        orderId: orderId(2),
        action: 'cancel',
        actor: 'buyer',
        at: new Date(),
        effects: async () => {
          outcome = await writtenOrHeldUp(env.db, persist(3), 'the batch');
        },
      },
    ]);

    expect(outcome).toBe('written');
    // the parent follows its least advanced child
    expect([await status(orderId(1)), ...(await Promise.all([...children, orderId(2), orderId(3)].map(status)))]).toEqual(['PAID', 'IN_FULFILLMENT', 'PAID', 'CANCELLED', 'PENDING_PAYMENT']);
  });
});
