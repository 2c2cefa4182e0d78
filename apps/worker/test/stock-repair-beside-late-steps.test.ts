import { CatalogRepository, CouponRepository, ProcessRepository, StockLedgerRepository, type ClosedReservation, type LedgerRestock } from '@orders/persistence';
import { buyerAddress, waitFor } from '@orders/testing';
import { StockReconciler } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The ledger as the repair reads it, with a movement committed in MySQL just after the repair
 * read the ledger to finish what Redis had not done: that movement's own Redis step comes late
 * (a worker died between its two sides, its job runs again after its lock).
 */
class LedgerMovedJustAfterRead extends StockLedgerRepository {
  movedAfter: { read: 'closedReservations' | 'restocks'; move: () => Promise<void> } | undefined;

  override async closedReservations(fromOrderId: string): Promise<ClosedReservation[]> {
    const read = await super.closedReservations(fromOrderId);
    await this.moveAfter('closedReservations');
    return read;
  }

  override async restocks(fromOrderId: string): Promise<LedgerRestock[]> {
    const read = await super.restocks(fromOrderId);
    await this.moveAfter('restocks');
    return read;
  }

  private async moveAfter(read: 'closedReservations' | 'restocks'): Promise<void> {
    if (this.movedAfter?.read !== read) return;
    const { move } = this.movedAfter;
    this.movedAfter = undefined;
    await move();
  }
}

describe('reconcile --repair beside a release, commit or restock whose other side comes late: each unit moved once', () => {
  let system: OrderSystem;
  let ledger: LedgerMovedJustAfterRead;

  const reconciler = () => {
    const { redis, db } = system.env;
    return new StockReconciler({ redis, inventory: system.workers.deps.inventory, ledger, catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log: pino({ level: 'silent' }) }, { settleMs: 300 });
  };
  const prefix = () => system.env.config.REDIS_KEY_PREFIX;
  const stock = (skuId: string) => system.stockOf(skuId);
  const buy = (buyer: string, skuId: string, qty: number) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty }], address: buyerAddress } });

  /** What a shop's buyers find: `units` more on sale, one by one, and then none. */
  async function sellsExactly(skuId: string, units: number): Promise<void> {
    for (let i = 0; i < units; i++) expect((await buy(`${skuId}-buyer-${i}`, skuId, 1)).status).toBe(202);
    const next = await buy(`${skuId}-buyer-${units}`, skuId, 1);
    expect([next.status, next.body.code]).toEqual([409, 'OUT_OF_STOCK']);
  }

  async function paidAndCommitted(buyer: string, skuId: string, qty: number): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId, qty }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await waitFor(async () => (await system.env.db.selectFrom('stock_ledger').select('id').where('order_id', '=', orderId).where('kind', '=', 'commit').executeTakeFirst()) !== undefined, {
      what: 'the settle job to commit the stock in Redis and in the ledger',
    });
    return orderId;
  }

  beforeAll(async () => {
    system = await startOrderSystem('stock_repair_late_steps', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '300' });
    ledger = new LedgerMovedJustAfterRead(system.env.db);
    for (const [skuId, deduction] of [
      ['LAMP', 'placement'],
      ['KETTLE', 'payment'],
      ['BOOK', 'placement'],
      ['MAP', 'placement'],
      ['PEN', 'placement'],
      ['CUP', 'placement'],
      ['JAR', 'placement'],
    ] as const) {
      await system.createSku({ skuId, priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction });
    }
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('leaves a cancel committed in MySQL just after the repair read the ledger to its own Redis release: 10 lamps on sale, not 12', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const orderKey = `${prefix()}{g0}:order:${orderId}`;
    const reservation = await system.env.redis.hgetall(orderKey);
    ledger.movedAfter = {
      read: 'closedReservations',
      move: async () => {
        expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ann'), body: { reason: 'changed my mind' } })).status).toBe(200);
        // its Redis release has not run yet: the record and the counters as before it
        await system.env.redis.multi().hset(orderKey, reservation).hincrby(`${prefix()}{g0}:sku:LAMP`, 'available', -2).hincrby(`${prefix()}{g0}:sku:LAMP`, 'reserved', 2).exec();
      },
    };

    const report = await reconciler().reconcile({ repair: true });
    expect([report.movementsInFlight, report.drift]).toEqual([1, []]);
    expect(await stock('LAMP')).toEqual({ available: 8, reserved: 2, sold: 0 });

    // the late release, run again after its lock
    expect(await system.workers.deps.inventory.releaseStock(orderId, 'ann', 'cancelled')).toBe(true);
    expect(await stock('LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect((await reconciler().reconcile({ repair: false })).drift).toEqual([]);
    await sellsExactly('LAMP', 10);
  });

  it('leaves a payment committed in Redis whose ledger row is not written yet to its settle job: 8 kettles left on sale, not 10', async () => {
    const orderId = await paidAndCommitted('bea', 'KETTLE', 2);
    expect(await stock('KETTLE')).toEqual({ available: 8, reserved: 0, sold: 2 });
    // the settle job died between committing in Redis and writing the ledger's row
    await system.env.db.deleteFrom('stock_ledger').where('order_id', '=', orderId).where('kind', '=', 'commit').execute();

    const report = await reconciler().reconcile({ repair: true });
    expect([report.movementsInFlight, report.drift]).toEqual([1, []]);
    expect(await stock('KETTLE')).toEqual({ available: 8, reserved: 0, sold: 2 });

    // the settle job, run again after its lock, writes the row
    await new ProcessRepository(system.env.db).recordStockCommitted(orderId);
    expect((await reconciler().reconcile({ repair: false })).drift).toEqual([]);
    // payment-time stock leaves at payment: the next payments take the 8 left, and no more
    expect(await stock('KETTLE')).toEqual({ available: 8, reserved: 0, sold: 2 });
  });

  it('leaves a refund restocked in MySQL just after the repair read the ledger to its own Redis restock: 8 books on sale, not 9', async () => {
    const orderId = await paidAndCommitted('cy', 'BOOK', 3);
    const restock = { orderId, ref: `refund-of-${orderId}`, lines: [{ skuId: 'BOOK', qty: 1 }] };
    ledger.movedAfter = {
      read: 'restocks',
      // the refund's MySQL side, as it writes the ledger; its Redis restock has not run yet
      move: async () => {
        await system.env.db.insertInto('stock_ledger').values({ sku_id: 'BOOK', kind: 'restock', ref: restock.ref, order_id: orderId, qty: 1, reason: 'refunded' }).execute();
      },
    };

    const report = await reconciler().reconcile({ repair: true });
    expect([report.movementsInFlight, report.drift]).toEqual([1, []]);
    expect(await stock('BOOK')).toEqual({ available: 7, reserved: 0, sold: 3 });

    // the late restock, the refund job run again
    expect(await system.workers.deps.inventory.restockStock(orderId, restock.ref, restock.lines)).toBe(true);
    expect(await stock('BOOK')).toEqual({ available: 8, reserved: 0, sold: 2 });
    expect((await reconciler().reconcile({ repair: false })).drift).toEqual([]);
    await sellsExactly('BOOK', 8);
  });

  /**
   * A paid order of 2 of each SKU whose refund of every unit commits in MySQL just after the repair read
   * the ledger, its Redis restock late, while Redis loses the counters of `lost`: each SKU sells 10.
   */
  async function refundBesideLostCounters(buyer: string, skuIds: string[], lost: string[]): Promise<void> {
    const orderId = await system.checkout(
      buyer,
      skuIds.map((skuId) => ({ skuId, qty: 2 })),
    );
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await waitFor(async () => (await system.env.db.selectFrom('stock_ledger').select('id').where('order_id', '=', orderId).where('kind', '=', 'commit').executeTakeFirst()) !== undefined, {
      what: 'the settle job to commit the stock',
    });
    const restock = { orderId, ref: `refund-of-${orderId}`, lines: skuIds.map((skuId) => ({ skuId, qty: 2 })) };
    ledger.movedAfter = {
      read: 'restocks',
      move: async () => {
        await system.env.db
          .insertInto('stock_ledger')
          .values(restock.lines.map((line) => ({ sku_id: line.skuId, kind: 'restock' as const, ref: restock.ref, order_id: orderId, qty: line.qty, reason: 'refunded' })))
          .execute();
        await system.env.redis.del(...lost.map((skuId) => `${prefix()}{g0}:sku:${skuId}`));
      },
    };

    const report = await reconciler().reconcile({ repair: true });
    expect([report.movementsInFlight, report.drift.map((drift) => [drift.skuId, drift.missing])]).toEqual([1, lost.map((skuId) => [skuId, true])]);
    for (const skuId of skuIds) expect(await stock(skuId)).toEqual({ available: 10, reserved: 0, sold: 0 });
    // the refund job run again restocks nothing more
    expect(await system.workers.deps.inventory.restockStock(orderId, restock.ref, restock.lines)).toBe(false);
    expect((await reconciler().reconcile({ repair: false })).drift).toEqual([]);
    for (const skuId of skuIds) await sellsExactly(skuId, 10);
  }

  it('gives a refund restocked in MySQL just after the repair read the ledger to both its SKUs when the repair recreates one Redis lost: 10 maps and 10 pens on sale', async () => {
    await refundBesideLostCounters('dee', ['MAP', 'PEN'], ['MAP']);
  });

  it('gives such a refund to both its SKUs when Redis lost both: 10 cups and 10 jars on sale', async () => {
    await refundBesideLostCounters('eve', ['CUP', 'JAR'], ['CUP', 'JAR']);
  });
});
