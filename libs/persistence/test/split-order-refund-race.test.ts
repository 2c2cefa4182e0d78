import { OrderRepository, ProcessRepository, RefundRepository } from '@orders/persistence';
import { createTestEnv, persistLampOrder, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A split order's last open child completing while the order's last refund is paid back. The
 * step reads from its transaction's snapshot, taken at its first read (here another order's
 * transition before it in one transaction; in production its own read of the child, before it
 * waits for the order's lock behind the refund's close): the refund was owed then. The close,
 * committed before the step's write, found a child open and left the order as it was; the step
 * must find the refund paid, or the order reads REFUNDING with nothing owed and nothing to close it.
 */
describe("a split order's last child closing while the order's last refund is paid back", () => {
  let env: TestEnv;
  let orders: OrderRepository;

  beforeAll(async () => {
    env = await createTestEnv('split_order_refund_race');
    orders = new OrderRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  const orderId = (n: number) => `01KSPLITRF${String(n).padStart(16, '0')}`;
  const persist = (n: number) => persistLampOrder(orders, '01KSPLITRF', n);
  const status = async (id: string) => (await env.db.selectFrom('orders').select('status').where('order_id', '=', id).executeTakeFirstOrThrow()).status;

  /** Order n split in two: its first child refunded, its second delivered; another buyer's unpaid order n + 1. */
  async function splitOrderAwaitingItsLastChild(n: number): Promise<{ splitOrder: string; delivered: string }> {
    await persist(n);
    await env.db.updateTable('orders').set({ status: 'DELIVERED' }).where('order_id', '=', orderId(n)).execute();
    const parent = await env.db.selectFrom('orders').selectAll().where('order_id', '=', orderId(n)).executeTakeFirstOrThrow();
    await env.db.insertInto('orders').values({ ...parent, order_id: `${orderId(n)}-1`, parent_order_id: orderId(n), status: 'REFUNDED', version: 1 }).execute();
    await env.db.insertInto('orders').values({ ...parent, order_id: `${orderId(n)}-2`, parent_order_id: orderId(n), status: 'DELIVERED', version: 1 }).execute();
    await persist(n + 1);
    return { splitOrder: orderId(n), delivered: `${orderId(n)}-2` };
  }

  /** The child's completion, in a transaction whose first read comes before `meanwhile` (the refund paid back and its close). */
  const completeAfter = (n: number, delivered: string, meanwhile: () => Promise<void>) =>
    orders.applyTransitions([
      { orderId: orderId(n + 1), action: 'cancel', actor: 'buyer', at: new Date(), effects: meanwhile },
      { orderId: delivered, action: 'complete', actor: 'system', at: new Date() },
    ]);

  it('completes once the refund of its own from before the split, owed while the child completed, is paid back', async () => {
    const { splitOrder, delivered } = await splitOrderAwaitingItsLastChild(1);
    await env.db
      .insertInto('refunds')
      .values({ refund_id: `${splitOrder}-rf`, order_id: splitOrder, kind: 'refund', status: 'SENT', version: 2, reason: 'one lamp too many', amount_cents: 2_500, items: '[]', created_at: new Date(), updated_at: new Date() })
      .execute();

    await completeAfter(1, delivered, async () => {
      expect(await new RefundRepository(env.db).markSucceeded(`${splitOrder}-rf`, new Date())).toBe(true);
      expect(await orders.closeSplitOrderOnceRefunded({ order_id: splitOrder, parent_order_id: null }, { at: new Date(), detail: `refund ${splitOrder}-rf` })).toEqual([]);
    });

    expect([await status(splitOrder), await status(delivered)]).toEqual(['COMPLETED', 'COMPLETED']);
  });

  it('completes once a payment due back, owed while the child completed, is given back', async () => {
    const { splitOrder, delivered } = await splitOrderAwaitingItsLastChild(3);
    const paymentId = `${splitOrder}-full-2`;
    await env.db
      .insertInto('payments')
      .values({ payment_id: paymentId, order_id: splitOrder, purpose: 'full', attempt: 2, method: 'card', amount_cents: 2_500, status: 'SUCCEEDED', transaction_id: 'tx-late', paid_at: new Date(), refund_due_at: new Date() })
      .execute();

    await completeAfter(3, delivered, async () => {
      await env.db.transaction().execute((trx) => ProcessRepository.clearRefundDue(trx, paymentId));
      expect(await orders.closeSplitOrderOnceRefunded({ order_id: splitOrder, parent_order_id: null }, { at: new Date(), detail: `refund ${paymentId}-refund` })).toEqual([]);
    });

    expect([await status(splitOrder), await status(delivered)]).toEqual(['COMPLETED', 'COMPLETED']);
  });

  it('stays REFUNDING when a payment of it falls due back while the child completes', async () => {
    const { splitOrder, delivered } = await splitOrderAwaitingItsLastChild(5);
    const paymentId = `${splitOrder}-full-2`;
    await env.db
      .insertInto('payments')
      .values({ payment_id: paymentId, order_id: splitOrder, purpose: 'full', attempt: 2, method: 'card', amount_cents: 2_500, status: 'PENDING', transaction_id: null, paid_at: null, refund_due_at: null })
      .execute();

    // a second payment, taken after the order was paid: recorded due back, as a late payment is
    await completeAfter(5, delivered, async () => {
      await env.db.updateTable('payments').set({ status: 'SUCCEEDED', transaction_id: 'tx-late', paid_at: new Date(), refund_due_at: new Date() }).where('payment_id', '=', paymentId).execute();
    });

    expect([await status(splitOrder), await status(delivered)]).toEqual(['REFUNDING', 'COMPLETED']);
  });
});
