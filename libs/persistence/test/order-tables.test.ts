import { IllegalTransition, ORDER_TYPES, priceOrder, stateMachineFor, type AcceptedOrder, type Actor, type OrderType, type Sku } from '@orders/domain';
import { OrderRepository, mysqlNow, type OrderToPersist } from '@orders/persistence';
import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ACTORS: Actor[] = ['buyer', 'merchant', 'system', 'payment', 'warehouse', 'admin'];

const lamp: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null };

let env: TestEnv;
let orders: OrderRepository;

beforeAll(async () => {
  env = await createTestEnv('order_tables');
  orders = new OrderRepository(env.db);
});
afterAll(async () => env?.cleanup());

describe('every order type’s table, applied to orders in MySQL', () => {
  async function orderIn(type: OrderType, n: number): Promise<string> {
    const orderId = `01J${type.toUpperCase().replace('_', '').padEnd(10, '0').slice(0, 10)}${String(n).padStart(13, '0')}`.slice(0, 26);
    const acceptedAt = new Date();
    await orders.persistAcceptedOrders(
      [
        {
          accepted: { orderId, userId: 'ada', type, items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: null, acceptedAt: acceptedAt.toISOString(), paymentDeadline: new Date(acceptedAt.getTime() + 60_000).toISOString() },
          priced: priceOrder(type, [{ skuId: 'LAMP', qty: 1 }], new Map([['LAMP', lamp]]), acceptedAt),
        },
      ],
      acceptedAt,
    );
    return orderId;
  }

  const snapshot = async (orderId: string) => {
    const row = await env.db.selectFrom('orders').select(['status', 'version']).where('order_id', '=', orderId).executeTakeFirstOrThrow();
    const history = await env.db.selectFrom('order_history').select('version').where('order_id', '=', orderId).execute();
    return { ...row, history: history.length };
  };

  it.each(ORDER_TYPES)('%s: every legal action of every state succeeds with its history row; every other action is refused and changes nothing', async (type) => {
    const machine = stateMachineFor(type);
    const orderId = await orderIn(type, 1);
    let legal = 0;
    let refused = 0;
    for (const state of machine.states()) {
      await env.db.updateTable('orders').set({ status: state }).where('order_id', '=', orderId).execute();
      // every refusal of the state first, then one look that none of them changed anything: a look after
      // each was four round trips per refusal, most of this file's time with MySQL busy
      const beforeRefusals = await snapshot(orderId);
      for (const action of machine.actions()) {
        for (const actor of ACTORS.filter((actor) => !machine.can(state, action, actor))) {
          await expect(orders.applyTransition({ orderId, action, actor, at: new Date() }), `${state} -${action}- by ${actor}`).rejects.toThrow(IllegalTransition);
          refused++;
        }
      }
      expect(await snapshot(orderId), `the refusals in ${state}`).toEqual(beforeRefusals);
      for (const action of machine.actions()) {
        for (const actor of ACTORS.filter((actor) => machine.can(state, action, actor))) {
          const before = await snapshot(orderId);
          const { fired } = await orders.applyTransition({ orderId, action, actor, at: new Date() });
          const after = await snapshot(orderId);
          expect(after).toEqual({ status: fired.to, version: before.version + 1, history: before.history + 1 });
          const last = await env.db.selectFrom('order_history').selectAll().where('order_id', '=', orderId).orderBy('version', 'desc').limit(1).executeTakeFirstOrThrow();
          expect({ from: last.from_status, action: last.action, to: last.to_status, actor: last.actor }).toEqual({ from: state, action, to: fired.to, actor });
          await env.db.updateTable('orders').set({ status: state }).where('order_id', '=', orderId).execute();
          legal++;
        }
      }
    }
    // an order neither split nor a child: a rule for split orders alone is refused it
    const rulesOfThisOrder = machine.process.transitions.filter((rule) => !rule.guard || rule.guard.test({ split: false, child: false }));
    expect(legal).toBe(rulesOfThisOrder.reduce((sum, rule) => sum + rule.actors.length, 0));
    expect(refused).toBeGreaterThan(legal);
  });

  it('an order split into children refuses the fulfilment actions (guard notSplit) and derives its status from them', async () => {
    const parentId = await orderIn('standard', 2);
    await env.db.updateTable('orders').set({ status: 'PAID' }).where('order_id', '=', parentId).execute();
    const parent = await env.db.selectFrom('orders').selectAll().where('order_id', '=', parentId).executeTakeFirstOrThrow();
    const children = ['01JCHILDA00000000000000001', '01JCHILDB00000000000000002'];
    for (const childId of children) {
      await env.db.insertInto('orders').values({ ...parent, order_id: childId, parent_order_id: parentId, version: 1 }).execute();
      await env.db.insertInto('order_history').values({ order_id: childId, version: 1, from_status: null, action: 'split', to_status: 'PAID', actor: 'system', detail: null, at: new Date() }).execute();
    }
    await expect(orders.applyTransition({ orderId: parentId, action: 'fulfil', actor: 'system', at: new Date() })).rejects.toThrow(IllegalTransition);
    await expect(orders.applyTransition({ orderId: parentId, action: 'split', actor: 'system', at: new Date() })).rejects.toThrow(IllegalTransition);

    // the two children move at once: the parent follows the slower one, and no update is lost
    await Promise.all(children.map((orderId) => orders.applyTransition({ orderId, action: 'fulfil', actor: 'system', at: new Date() })));
    expect((await snapshot(parentId)).status).toBe('IN_FULFILLMENT');
    await orders.applyTransition({ orderId: children[0]!, action: 'ship', actor: 'warehouse', at: new Date() });
    expect((await snapshot(parentId)).status).toBe('IN_FULFILLMENT');
    await orders.applyTransition({ orderId: children[1]!, action: 'ship', actor: 'warehouse', at: new Date() });
    expect((await snapshot(parentId)).status).toBe('SHIPPED');
    const history = await env.db.selectFrom('order_history').selectAll().where('order_id', '=', parentId).orderBy('version').execute();
    expect(history.slice(-2).map((h) => ({ from: h.from_status, action: h.action, to: h.to_status, actor: h.actor }))).toEqual([
      { from: 'PAID', action: 'fulfil', to: 'IN_FULFILLMENT', actor: 'system' },
      { from: 'IN_FULFILLMENT', action: 'ship', to: 'SHIPPED', actor: 'warehouse' },
    ]);
  });
});

describe('a persisted batch of accepted orders', () => {
  it('keeps every order’s acceptance time and the batch’s write time (no earlier than the acceptance) to the millisecond, and its payment window from the write by MySQL’s clock, or the later deadline its checkout set', async () => {
    const now = new Date('2026-12-01T02:40:49.050Z');
    // the last accepted by a Redis clock an hour ahead of MySQL's: its deadline ends after a window from the write
    const acceptedTimes = ['2026-12-01T02:40:48.007Z', '2026-12-01T02:40:48.123Z', '2026-12-01T02:40:48.123Z', '2026-11-30T23:59:59.999Z', new Date(Date.now() + 3_600_007).toISOString()];
    const accepted: AcceptedOrder[] = acceptedTimes.map((acceptedAt, i) => ({
      orderId: `01JTIMES00000000000000000${i}`,
      userId: `buyer-${i}`,
      type: 'standard',
      items: [{ skuId: 'LAMP', qty: 1 }],
      address: buyerAddress,
      couponCode: null,
      acceptedAt,
      paymentDeadline: new Date(Date.parse(acceptedAt) + 900_001).toISOString(),
    }));
    const writtenFrom = await mysqlNow(env.db);
    const written = await orders.persistAcceptedOrders(
      accepted.map((order) => ({ accepted: order, priced: priceOrder(order.type, order.items, new Map([['LAMP', lamp]]), new Date(order.acceptedAt)) })),
      now,
    );
    const writtenUntil = await mysqlNow(env.db);
    // the four waited days in the queue: one read of MySQL's clock for the batch gives each the same deadline
    const fromTheWrite = written.get(accepted[0]!.orderId)!.getTime();
    expect(fromTheWrite - 900_001).toBeGreaterThanOrEqual(writtenFrom);
    expect(fromTheWrite - 900_001).toBeLessThanOrEqual(writtenUntil);
    const deadlines = accepted.map((order, i) => (i < 4 ? new Date(fromTheWrite).toISOString() : order.paymentDeadline));
    expect(accepted.map((order) => written.get(order.orderId)!.toISOString())).toEqual(deadlines);

    // written no earlier than placed: the last, placed by the clock an hour ahead, is written at its placing
    const writtenAt = accepted.map((order) => new Date(Math.max(now.getTime(), Date.parse(order.acceptedAt))).toISOString());
    const orderIds = accepted.map((order) => order.orderId);
    const rows = await env.db.selectFrom('orders').select(['order_id', 'accepted_at', 'payment_deadline', 'created_at', 'updated_at']).where('order_id', 'in', orderIds).orderBy('order_id').execute();
    expect(rows.map((row) => ({ ...row, accepted_at: row.accepted_at.toISOString(), payment_deadline: row.payment_deadline.toISOString(), created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() }))).toEqual(
      accepted.map((order, i) => ({ order_id: order.orderId, accepted_at: order.acceptedAt, payment_deadline: deadlines[i], created_at: writtenAt[i], updated_at: writtenAt[i] })),
    );
    const history = await env.db.selectFrom('order_history').select(['order_id', 'version', 'at']).where('order_id', 'in', orderIds).orderBy('order_id').orderBy('version').execute();
    expect(history.map((row) => [row.order_id, row.version, row.at.toISOString()])).toEqual(
      accepted.flatMap((order, i) => [
        [order.orderId, 0, order.acceptedAt],
        [order.orderId, 1, writtenAt[i]],
      ]),
    );
  });

  it('writes each order once when batches bring some again, one after the other or racing, and says which it wrote', async () => {
    const accepted = (n: number): OrderToPersist => {
      const acceptedAt = new Date('2026-12-01T15:00:00.000Z');
      const order: AcceptedOrder = { orderId: `01JREPLAY${String(n).padStart(17, '0')}`, userId: `buyer-${n}`, type: 'standard', items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: null, acceptedAt: acceptedAt.toISOString(), paymentDeadline: new Date(acceptedAt.getTime() + 900_000).toISOString() };
      return { accepted: order, priced: priceOrder(order.type, order.items, new Map([['LAMP', lamp]]), acceptedAt) };
    };
    const now = new Date();
    const writtenBy = async (batch: OrderToPersist[]) => [...(await orders.persistAcceptedOrders(batch, now)).keys()];
    expect(await writtenBy([accepted(1), accepted(2)])).toEqual([accepted(1).accepted.orderId, accepted(2).accepted.orderId]);
    // a re-delivered job merged with new orders: the new ones are written, the others left as they are
    expect(await writtenBy([accepted(3), accepted(2), accepted(4), accepted(1)])).toEqual([accepted(3).accepted.orderId, accepted(4).accepted.orderId]);
    expect(await writtenBy([accepted(4)])).toEqual([]);

    // eight workers' batches racing over 40 orders, each order in three of them
    const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: 15 }, (_, i) => accepted(10 + ((b * 5 + i * 7) % 40))));
    const written = (await Promise.all(batches.map(writtenBy))).flat();
    expect([...written].sort()).toEqual(Array.from({ length: 40 }, (_, i) => accepted(10 + i).accepted.orderId).sort());

    const ids = Array.from({ length: 50 }, (_, i) => accepted(i).accepted.orderId);
    const history = await env.db.selectFrom('order_history').select((eb) => eb.fn.countAll<number>().as('n')).where('order_id', 'in', ids).executeTakeFirstOrThrow();
    expect(Number(history.n)).toBe(2 * 44);
  });
});
