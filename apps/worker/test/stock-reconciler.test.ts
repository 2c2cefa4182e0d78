import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import { buyerAddress, holdTable, runOperatorCommand, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('the stock reconciler: Redis counters against the MySQL ledger', () => {
  let system: OrderSystem;
  let inventory: Inventory;

  /**
   * npm run reconcile as an operator runs it (node on its build, which npm test's typecheck makes
   * first), in its own process, against this test's database and prefix. It starts a second or
   * more sooner than through tsx, and the tests below run it 8 times (those whose subject is not its
   * output check in this process: driftNow).
   */
  async function reconcile(...args: string[]): Promise<{ output: string; exitCode: number | null }> {
    return reconcileWith({}, ...args);
  }

  async function reconcileWith(settings: Record<string, string>, ...args: string[]): Promise<{ output: string; exitCode: number | null }> {
    const { output, exitCode } = await runOperatorCommand('reconcile', args, { ...system.env.env, ...settings });
    return { output, exitCode };
  }

  /** The worker's stock_drift_units series, per SKU, as Prometheus would scrape them. */
  async function driftGauge(): Promise<Record<string, number>> {
    const metric = await system.workers.deps.metrics.registry.getSingleMetric('stock_drift_units')!.get();
    return Object.fromEntries(metric.values.map((sample) => [String(sample.labels.sku), sample.value]));
  }

  /** Every stock drift series of the worker's /metrics, as Prometheus scrapes them. */
  async function driftSeries(): Promise<string[]> {
    return (await system.workers.deps.metrics.exposition()).split('\n').filter((line) => /^stock_(counter_)?drift_units\{/.test(line));
  }

  /** Whether the worker exports a stock check that finished after `at` (ms), so a missing drift series means no drift rather than no check yet. */
  async function checkedAfter(at: number): Promise<boolean> {
    const metric = await system.workers.deps.metrics.registry.getSingleMetric('stock_reconcile_last_success_timestamp_seconds')!.get();
    return metric.values.some((sample) => sample.value * 1000 > at);
  }

  /** A check as the scheduled job runs it, in this process: for the tests whose subject is not the command's output. */
  const driftNow = async () => (await system.reconciler().reconcile({ repair: false })).drift;
  const skuKey = (skuId: string) => `${system.env.config.REDIS_KEY_PREFIX}{g0}:sku:${skuId}`;
  const redisStock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: system.token('ops', 'admin') })).body.stock;

  beforeAll(async () => {
    system = await startOrderSystem('stock_reconciler', { RECONCILE_INTERVAL_MS: '300', RECONCILE_SETTLE_MS: '100' });
    const { config } = system.env;
    inventory = new Inventory(system.env.redis, config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(config));
    await system.createSku({ skuId: 'LAMP', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'BOOK', priceCents: 1_200, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'payment' });

    // a lived-in shop: a paid order (sold), unpaid ones (reserved), and one accepted order still on its way to MySQL
    const paid = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'BOOK', qty: 1 }]);
    await system.waitForStatus(paid, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${paid}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    for (const buyer of ['ben', 'cat']) await system.waitForStatus(await system.checkout(buyer, [{ skuId: 'LAMP', qty: 1 }]), 'PENDING_PAYMENT');
    await waitFor(async () => (await redisStock('LAMP')).sold === 2, { what: 'the paid order to commit its stock' });
    await inventory.reserveStock({
      orderId: '01JZZZZZZZZZZZZZZZZZZZZZZZ',
      userId: 'dan',
      idempotencyKey: 'in-flight',
      bodyHash: 'in-flight',
      requestedType: null,
      items: [{ skuId: 'LAMP', qty: 3 }],
      payload: { address: buyerAddress, couponCode: null },
      now: new Date(),
    });
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('reports no drift on a clean system, counting an order not yet in MySQL as in flight', async () => {
    expect(await redisStock('LAMP')).toEqual({ available: 13, reserved: 5, sold: 2 });
    const startedAt = Date.now();
    const { output, exitCode } = await reconcile();
    expect(exitCode).toBe(0);
    expect(output).toContain('2 SKUs checked; 1 accepted order(s) not yet in MySQL counted as in flight.');
    expect(output).toContain('No drift: Redis matches the MySQL ledger.');
    await waitFor(async () => (await checkedAfter(startedAt)) && (await driftSeries()).length === 0, { what: 'a check to be exported with no drift series' });
  });

  it('finds drift made by hand, reports it in the command and the metric, and repairs it only with --repair', async () => {
    // Redis gains 5 lamps nobody put there; the ledger loses 2 books of the opening stock
    await system.env.redis.hincrby(skuKey('LAMP'), 'available', 5);
    await system.env.db.updateTable('stock_ledger').set({ qty: 48 }).where('sku_id', '=', 'BOOK').where('kind', '=', 'adjust').execute();

    await waitFor(async () => {
      const gauge = await driftGauge();
      return gauge.LAMP === 5 && gauge.BOOK === 2;
    }, { what: 'the scheduled reconciliation to export the drift' });

    const { output: report, exitCode: driftLeft } = await reconcile();
    // a cron job or runbook step tells drift left in place from all clear by the exit code
    expect(driftLeft).toBe(2);
    expect(report).toMatch(/Drift \(Redis minus ledger\) on 2 SKUs/);
    expect(report).toMatch(/^BOOK\s+\+2\s+0\s+0\s+47\/0\/1$/m);
    expect(report).toMatch(/^LAMP\s+\+5\s+0\s+0\s+13\/5\/2$/m);
    expect(report).toContain('The drift is left as it is; run with --repair');
    expect(await redisStock('LAMP')).toEqual({ available: 18, reserved: 5, sold: 2 });

    const { output: repaired, exitCode: repairedExit } = await reconcile('--repair');
    expect(repairedExit).toBe(0);
    expect(repaired).toContain('Repaired: the Redis counters now match the ledger.');
    expect(await redisStock('LAMP')).toEqual({ available: 13, reserved: 5, sold: 2 });
    expect(await redisStock('BOOK')).toEqual({ available: 47, reserved: 0, sold: 1 });

    const repairedAt = Date.now();
    expect((await reconcile()).output).toContain('No drift: Redis matches the MySQL ledger.');
    await waitFor(async () => (await checkedAfter(repairedAt)) && (await driftSeries()).length === 0, { what: 'the drift series to go once repaired' });
  });

  it('exports drift series for the one SKU of a catalog of 50 that drifts, and none once it is repaired', async () => {
    await Promise.all(
      Array.from({ length: 48 }, (_, i) =>
        system.createSku({ skuId: `CHAIR-${String(i + 1).padStart(2, '0')}`, priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' }),
      ),
    );
    const createdAt = Date.now();
    await waitFor(async () => (await checkedAfter(createdAt)) && (await driftSeries()).length === 0, { what: 'a check of the 50 SKUs with no drift series' });

    // Redis gains 4 chairs on sale and 1 sold that the ledger never had
    await system.env.redis.hincrby(skuKey('CHAIR-17'), 'available', 4);
    await system.env.redis.hincrby(skuKey('CHAIR-17'), 'sold', 1);
    await waitFor(
      async () =>
        JSON.stringify(await driftSeries()) ===
        JSON.stringify(['stock_drift_units{sku="CHAIR-17",app="worker"} 4', 'stock_counter_drift_units{sku="CHAIR-17",counter="sold",app="worker"} 1']),
      { what: 'the sellable and sold drift of CHAIR-17, and no other series', explain: async () => (await driftSeries()).join('\n') },
    );
    // the report every worker's scrape reads holds the one SKU, not the catalog
    expect(await system.env.redis.hkeys(`${system.env.config.REDIS_KEY_PREFIX}stock-drift`)).toEqual(['CHAIR-17']);

    const { output, exitCode } = await reconcile('--repair');
    expect([exitCode, output]).toEqual([0, expect.stringContaining('50 SKUs checked')]);
    const repairedAt = Date.now();
    await waitFor(async () => (await checkedAfter(repairedAt)) && (await driftSeries()).length === 0, { what: 'the drift series of CHAIR-17 to go once repaired' });
    expect(await system.env.redis.hlen(`${system.env.config.REDIS_KEY_PREFIX}stock-drift`)).toBe(0);
  });

  it('sums a SKU split into buckets: units between buckets are no drift, a bucket changed by hand is found and repaired', async () => {
    await system.createSku({ skuId: 'TORCH', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
    const torchBuckets = async () => (await system.request('GET', '/v1/admin/skus/TORCH', { token: system.token('ops', 'admin') })).body;
    expect((await torchBuckets()).bucketStock.map((bucket: { available: number }) => bucket.available)).toEqual([10, 10, 10, 10]);

    // 4 units taken from bucket 0 and not yet given to bucket 3: a transfer under way, not drift
    const transfer = { transferId: 'by-hand-1', skuId: 'TORCH', from: 0, to: 3, qty: 4 };
    expect((await inventory.takeForTransfer(transfer, new Date())).qty).toBe(4);
    expect(await driftNow()).toEqual([]);
    // the reconciler finishes a transfer left open; the SKU's total never moved
    await waitFor(async () => (await torchBuckets()).bucketStock[3].available === 14, { what: 'the open transfer to be finished' });
    expect((await torchBuckets()).stock).toEqual({ available: 40, reserved: 0, sold: 0 });

    // 3 units nobody put there appear in bucket 2
    await system.env.redis.hincrby(`${system.env.config.REDIS_KEY_PREFIX}{g2}:sku:TORCH`, 'available', 3);
    await waitFor(async () => (await driftGauge()).TORCH === 3, { what: 'the scheduled reconciliation to see the bucket drift' });
    const found = await reconcile();
    expect(found.exitCode).toBe(2);
    expect(found.output).toMatch(/^TORCH\s+\+3\s+0\s+0\s+40\/0\/0$/m);
    expect((await reconcile('--repair')).exitCode).toBe(0);
    expect((await torchBuckets()).stock).toEqual({ available: 40, reserved: 0, sold: 0 });
    expect(await driftNow()).toEqual([]);
  });

  it('sells exactly the stock a merchant sets while units are on their way between buckets, and finds no drift', { timeout: 60_000 }, async () => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
    const kettle = async () => (await system.request('GET', '/v1/admin/skus/KETTLE', { token: admin })).body;
    const setStock = async (stock: number) => expect((await system.request('PUT', '/v1/admin/skus/KETTLE/stock', { token: admin, body: { stock } })).status).toBe(200);
    // taken "3 s from now": the worker's scheduled run finishes transfers older than 100 ms, and must not before the PUT
    const takenAt = () => new Date(Date.now() + 3_000);

    // a rebalancer takes 5 units off bucket 0 for bucket 3, the merchant sets 20, then it gives them: too late
    const taken = await inventory.takeForTransfer({ transferId: 'kettle-1', skuId: 'KETTLE', from: 0, to: 3, qty: 5 }, takenAt());
    await setStock(20);
    expect(await inventory.giveForTransfer(taken)).toBe('voided');
    expect((await kettle()).stock).toEqual({ available: 20, reserved: 0, sold: 0 });

    // another takes 4 units off bucket 1 for bucket 2 and dies; the merchant sets 24; the reconciler's run finishes it
    await inventory.takeForTransfer({ transferId: 'kettle-2', skuId: 'KETTLE', from: 1, to: 2, qty: 4 }, takenAt());
    await setStock(24);
    await waitFor(async () => (await inventory.openTransfers(new Date(Date.now() + 60_000))).length === 0, { what: 'the scheduled reconciliation to finish both transfers', timeoutMs: 15_000 });
    expect((await kettle()).stock).toEqual({ available: 24, reserved: 0, sold: 0 });
    // 40 opening, 20 - 35 and 24 - 16 set by the merchant, the two voided transfers' units out: 24
    const ledger = await system.env.db.selectFrom('stock_ledger').select(['ref', 'qty']).where('sku_id', '=', 'KETTLE').orderBy('id').execute();
    expect(ledger.filter((row) => row.ref.startsWith('transfer:')).map((row) => [row.ref, Number(row.qty)])).toEqual([
      ['transfer:kettle-1:out', -5],
      ['transfer:kettle-2:out', -4],
    ]);
    expect(ledger.map((row) => Number(row.qty))).toEqual([40, -15, 8, -5, -4]);
    expect(await driftNow()).toEqual([]);

    // 300 buyers race for the 24 units
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        system.request('POST', '/v1/orders', { token: system.token(`kettle-buyer-${i}`), headers: { 'idempotency-key': 'kettle' }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress } }),
      ),
    );
    expect(answers.filter((answer) => answer.status !== 202).map((answer) => answer.body.code)).toEqual(Array.from({ length: 276 }, () => 'OUT_OF_STOCK'));
    expect((await kettle()).stock).toEqual({ available: 0, reserved: 24, sold: 0 });
    expect(await driftNow()).toEqual([]);
  });

  it.each([
    { skuId: 'LANTERN', stockBuckets: 1 },
    { skuId: 'LANTERN-SPLIT', stockBuckets: 4 },
  ])('takes a stock set of $skuId ($stockBuckets bucket(s)) back from Redis when MySQL refuses it, so the operator’s retry lands in the ledger and leaves no drift', async ({ skuId, stockBuckets }) => {
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId, priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 30, deduction: 'placement', stockBuckets });
    const setStock = (stock: number) => system.request('PUT', `/v1/admin/skus/${skuId}/stock`, { token: admin, body: { stock } });
    // MySQL refuses the set's ledger entry after Redis has taken the new quantity
    await sql`CREATE TRIGGER refuse_lantern_sets BEFORE INSERT ON stock_ledger FOR EACH ROW
      BEGIN IF NEW.sku_id = ${skuId} AND NEW.kind = 'adjust' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END`.execute(system.env.db);
    try {
      const refused = await setStock(10);
      expect([refused.status, String(refused.headers['content-type'])]).toEqual([500, expect.stringContaining('application/problem+json')]);
    } finally {
      await sql`DROP TRIGGER refuse_lantern_sets`.execute(system.env.db);
    }
    expect(await redisStock(skuId)).toEqual({ available: 30, reserved: 0, sold: 0 });

    expect((await setStock(10)).status).toBe(200);
    expect(await redisStock(skuId)).toEqual({ available: 10, reserved: 0, sold: 0 });
    const ledger = await system.env.db.selectFrom('stock_ledger').select('qty').where('sku_id', '=', skuId).orderBy('id').execute();
    expect(ledger.map((row) => Number(row.qty))).toEqual([30, -20]);
    expect(await driftNow()).toEqual([]);
  });

  it('still sells what the ledger says after the repair', async () => {
    const orderId = await system.checkout('eve', [{ skuId: 'LAMP', qty: 13 }]);
    expect(orderId).toMatch(/^[0-9A-Z]{26}$/);
    const soldOut = await system.request('POST', '/v1/orders', { token: system.token('fay'), body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': 'fay-1' } });
    expect(soldOut.body.code).toBe('OUT_OF_STOCK');
  });

  it('reads the ledger settled over an hour ago as sums, the reservations still open row by row, and finds drift as before', async () => {
    const { db } = system.env;
    await expect.poll(async () => (await db.selectFrom('orders').select('status').where('user_id', '=', 'eve').executeTakeFirst())?.status).toBe('PENDING_PAYMENT');
    const eve = (await db.selectFrom('orders').select('order_id').where('user_id', '=', 'eve').executeTakeFirstOrThrow()).order_id;
    // an hour passes: every ledger row so far is old enough to be settled
    await sql`UPDATE stock_ledger SET created_at = NOW(3) - INTERVAL 2 HOUR`.execute(db);
    const newest = Number((await db.selectFrom('stock_ledger').select((eb) => eb.fn.max('id').as('id')).executeTakeFirstOrThrow()).id);
    await waitFor(async () => Number((await db.selectFrom('stock_ledger_settled_through').select('ledger_id').executeTakeFirstOrThrow()).ledger_id) === newest, {
      what: 'a scheduled check to fold the settled ledger into its sums',
    });
    // what is read row by row: the unpaid orders' reservations, which their payment or expiry closes
    const unpaid = await db.selectFrom('orders').select('order_id').where('status', '=', 'PENDING_PAYMENT').execute();
    const unsettled = await db.selectFrom('stock_ledger_unsettled as u').innerJoin('stock_ledger as l', 'l.id', 'u.ledger_id').select('l.ref').distinct().execute();
    expect(unsettled.map((row) => row.ref).sort()).toEqual(unpaid.map((row) => row.order_id).sort());
    // and the workers' scrapes say the check reads no old row past its sums
    await expect.poll(async () => (await system.workers.deps.metrics.exposition()).match(/^stock_ledger_oldest_unfolded_row_age_seconds\{[^}]*\} (\S+)$/m)?.[1]).toBe('0');
    expect(await driftNow()).toEqual([]);

    // one of them is paid: its commit, above the settled id, closes its reservation read row by row
    expect((await system.request('POST', `/v1/orders/${eve}/pay`, { token: system.token('eve'), body: { method: 'card' } })).status).toBe(202);
    await waitFor(async () => (await redisStock('LAMP')).sold === 15, { what: "eve's payment to commit her lamps in Redis" });
    await waitFor(async () => (await db.selectFrom('stock_ledger').select('id').where('ref', '=', eve).where('kind', '=', 'commit').execute()).length > 0, {
      what: "eve's payment to commit her lamps in the ledger",
    });
    expect(await driftNow()).toEqual([]);
    await system.env.redis.hincrby(skuKey('LAMP'), 'sold', 1);
    expect(await driftNow()).toMatchObject([{ skuId: 'LAMP', available: 0, reserved: 0, sold: 1 }]);
    await system.env.redis.hincrby(skuKey('LAMP'), 'sold', -1);
  });

  it('gives up when MySQL leaves its ledger reading unanswered for RECONCILE_QUERY_TIMEOUT_MS, and exits 1 rather than waiting for hours', async () => {
    // a session holds the ledger (LOCK TABLES, as a backup or a hand-run migration may): reading it waits for as long
    const held = await holdTable(system.env.db, 'stock_ledger');
    try {
      const { output, exitCode } = await reconcileWith({ RECONCILE_QUERY_TIMEOUT_MS: '1000' });
      expect(exitCode).toBe(1);
      expect(output).toContain('Failed: MySQL select statement ended after RECONCILE_QUERY_TIMEOUT_MS (1000 ms)');
    } finally {
      await held.release();
    }
  });
});
