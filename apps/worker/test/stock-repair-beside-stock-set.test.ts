import { CatalogRepository, CouponRepository, StockLedgerRepository, createDb } from '@orders/persistence';
import { Inventory, StockKeys, checkoutTimeoutsOf } from '@orders/stock';
import { holdRow, ledgerAvailable, rowLockWaits, waitFor } from '@orders/testing';
import { StockReconciler } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raceForOneEach } from './support/bucket-race.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * The repair's Inventory, on the system's Redis, that stops once it has recreated a SKU's lost
 * buckets and before it fills them, as a repair whose next command is slow to go out does:
 * `recreated` resolves there, and the repair goes on at `goOn`.
 */
class RepairStoppingAfterRecreate extends Inventory {
  recreated!: Promise<void>;
  goOn!: () => void;
  private reached!: () => void;
  private going!: Promise<void>;

  constructor(...args: ConstructorParameters<typeof Inventory>) {
    super(...args);
    this.recreated = new Promise((resolve) => (this.reached = resolve));
    this.going = new Promise((resolve) => (this.goOn = resolve));
  }

  override async recreateLostBuckets(rules: Parameters<Inventory['recreateLostBuckets']>[0]): Promise<number[]> {
    const recreated = await super.recreateLostBuckets(rules);
    this.reached();
    await this.going;
    return recreated;
  }
}

describe("reconcile --repair of a lost bucket beside a merchant's stock set", () => {
  let system: OrderSystem;

  const admin = () => system.token('ops', 'admin');
  const bucketKey = (skuId: string, bucket: number) => `${system.env.config.REDIS_KEY_PREFIX}{g${bucket}}:sku:${skuId}`;
  const buckets = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin() })).body.bucketStock;
  const setStock = (skuId: string, units: number) => system.request('PUT', `/v1/admin/skus/${skuId}/stock`, { token: admin(), body: { stock: units } });
  /** The first of `name`-0, `name`-1, … whose checkouts of a SKU split 4 ways run in this bucket. */
  const buyerOf = (bucket: number, name: string) => {
    for (let i = 0; ; i++) if (new StockKeys('').bucketOf(`${name}-${i}`, 4) === bucket) return `${name}-${i}`;
  };
  const reserved = async (buyer: string, skuId: string, qty: number) => system.waitForStatus(await system.checkout(buyer, [{ skuId, qty }]), 'PENDING_PAYMENT');
  const reconcilerWith = (inventory: Inventory, db = system.env.db) =>
    new StockReconciler(
      { redis: system.env.redis, inventory, ledger: new StockLedgerRepository(db), catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log: pino({ level: 'silent' }) },
      { settleMs: 100 },
    );

  beforeAll(async () => {
    // no scheduled stock check: the test runs it when the operator's would have
    system = await startOrderSystem('stock_repair_beside_set', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('makes the merchant’s set of the ottomans to 20, sent while the repair has recreated bucket 2 and not yet put its 10 back, wait for the repair: 20 on sale and in the ledger, not 30', { timeout: 60_000 }, async () => {
    const { config, redis, db } = system.env;
    await system.createSku({ skuId: 'OTTOMAN', priceCents: 4_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
    await reserved(buyerOf(1, 'ottoman-early'), 'OTTOMAN', 2);
    // the node holding bucket 2 came back empty: its 10 ottomans are in the ledger alone
    await redis.del(bucketKey('OTTOMAN', 2));
    expect((await setStock('OTTOMAN', 20)).status).toBe(503);

    const inventory = new RepairStoppingAfterRecreate(redis, config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(config));
    const repairing = reconcilerWith(inventory).reconcile({ repair: true });
    await inventory.recreated;
    // bucket 2 is back, empty: the merchant's set is no longer refused for it
    let answered = false;
    const setting = setStock('OTTOMAN', 20).finally(() => (answered = true));
    await waitFor(async () => answered || (await rowLockWaits(db)).length > 0, { what: 'the set to be answered, or to wait for the row lock', intervalMs: 200 });
    const answeredBeforeTheFill = answered;
    inventory.goOn();
    const [report, set] = await Promise.all([repairing, setting]);

    expect([report.unitsLeft, set.status]).toEqual([[], 200]);
    expect([await system.stockOf('OTTOMAN'), await ledgerAvailable(system.env.db, 'OTTOMAN')]).toEqual([{ available: 20, reserved: 2, sold: 0 }, 20]);
    expect(await buckets('OTTOMAN')).toEqual([
      { available: 5, reserved: 0, sold: 0 },
      { available: 5, reserved: 2, sold: 0 },
      { available: 5, reserved: 0, sold: 0 },
      { available: 5, reserved: 0, sold: 0 },
    ]);
    expect((await system.reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'OTTOMAN')).toEqual([]);
    // the set waited for the SKU's row until the repair had put bucket 2's 10 back
    expect(answeredBeforeTheFill).toBe(false);
    expect(await raceForOneEach(system, 'OTTOMAN')).toBe(20);
  });

  it('leaves the footstools, whose row a stuck stock set holds past the lock wait, to the next run and repairs the poufs meanwhile; the next run repairs the footstools', { timeout: 60_000 }, async () => {
    const { config, redis } = system.env;
    for (const skuId of ['FOOTSTOOL', 'POUF']) {
      await system.createSku({ skuId, priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
      await redis.del(bucketKey(skuId, 2));
    }
    // the repair's connections give up waiting for a row lock after 1 s (InnoDB's default is 50 s)
    const impatient = createDb(config.MYSQL_URL, 2, config.MYSQL_QUERY_TIMEOUT_MS);
    impatient.pool.on('connection', (connection) => void connection.query('SET SESSION innodb_lock_wait_timeout = 1'));
    const held = await holdRow(system.env.db, 'skus', 'sku_id', 'FOOTSTOOL');
    try {
      const report = await reconcilerWith(system.workers.deps.inventory, impatient.db).reconcile({ repair: true });
      expect([report.skusBusy, report.repaired, report.drift.map((drift) => drift.skuId).sort()]).toEqual([['FOOTSTOOL'], false, ['FOOTSTOOL', 'POUF']]);
      expect(await system.stockOf('POUF')).toEqual({ available: 40, reserved: 0, sold: 0 });
      expect(await redis.exists(bucketKey('FOOTSTOOL', 2))).toBe(0);
    } finally {
      await held.release();
      await impatient.db.destroy();
    }

    const again = await system.reconciler().reconcile({ repair: true });
    expect([again.skusBusy, again.repaired, again.drift.map((drift) => drift.skuId)]).toEqual([[], true, ['FOOTSTOOL']]);
    expect([await system.stockOf('FOOTSTOOL'), await ledgerAvailable(system.env.db, 'FOOTSTOOL')]).toEqual([{ available: 40, reserved: 0, sold: 0 }, 40]);
  });
});
