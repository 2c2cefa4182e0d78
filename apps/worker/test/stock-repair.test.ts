import { CatalogRepository, CouponRepository, StockLedgerRepository } from '@orders/persistence';
import { StockKeys, StockSets } from '@orders/stock';
import { buyerAddress, ledgerAvailable, reservationOf, runOperatorCommand, waitFor } from '@orders/testing';
import { StockReconciler, closeUnpaidOrder } from '@orders/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raceForOneEach } from './support/bucket-race.js';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

describe('reconcile --repair: order by order, one at a time, and saying what it could not repair', () => {
  let system: OrderSystem;

  const reconciler = (settleMs?: number) => system.reconciler(settleMs);

  /** npm run reconcile as an operator runs it, in its own process. */
  async function reconcile(...args: string[]): Promise<{ output: string; exitCode: number | null }> {
    const { stdout, stderr, exitCode } = await runOperatorCommand('reconcile', args, system.env.env);
    return { output: stdout + stderr, exitCode };
  }

  const prefix = () => system.env.config.REDIS_KEY_PREFIX;
  const skuKey = (skuId: string) => `${prefix()}{g0}:sku:${skuId}`;
  const orderKey = (orderId: string) => `${prefix()}{g0}:order:${orderId}`;
  const stock = (skuId: string) => system.stockOf(skuId);
  const buy = (buyer: string, skuId: string, qty: number, couponCode?: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-${skuId}` }, body: { items: [{ skuId, qty }], address: buyerAddress, couponCode } });
  const cancel = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } });

  /** A cancel whose Redis step failed after its MySQL commit (the buyer got a 500): the ledger released the units, Redis still holds them reserved. */
  async function cancelledInMysqlOnly(orderId: string, buyer: string, skuId: string, qty: number): Promise<void> {
    // the reservation record as if the release had never run (a released one keeps its state and reason alone)
    const reservation = await system.env.redis.hgetall(orderKey(orderId));
    expect((await cancel(orderId, buyer)).status).toBe(200);
    await system.env.redis
      .multi()
      .hset(orderKey(orderId), reservation)
      .hincrby(skuKey(skuId), 'available', -qty)
      .hincrby(skuKey(skuId), 'reserved', qty)
      .exec();
    expect(await stock(skuId)).toEqual({ available: 10 - qty, reserved: qty, sold: 0 });
  }

  beforeAll(async () => {
    system = await startOrderSystem('stock_repair', { RECONCILE_INTERVAL_MS: '0', RECONCILE_SETTLE_MS: '100' });
    for (const skuId of ['LAMP', 'DESK', 'MUG', 'PEN', 'SCARF']) {
      await system.createSku({ skuId, priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: skuId === 'PEN' ? 5 : 10, deduction: 'placement' });
    }
  }, 60_000);

  afterAll(async () => {
    await system?.close();
  });

  it('gives 2 lamps back once when a cancel failed in Redis, the repair ran, and then the payment deadline job released them: 10 of 10 on sale, the 11th refused', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await cancelledInMysqlOnly(orderId, 'ann', 'LAMP', 2);

    const report = await reconciler().reconcile({ repair: true });
    expect(await stock('LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });

    // the payment deadline comes: the expiry finds the order cancelled and finishes its Redis release, a no-op by now
    await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system' });
    expect(await stock('LAMP')).toEqual({ available: 10, reserved: 0, sold: 0 });

    for (const buyer of ['b1', 'b2', 'b3', 'b4', 'b5']) expect((await buy(buyer, 'LAMP', 2)).status).toBe(202);
    const eleventh = await buy('b6', 'LAMP', 1);
    expect([eleventh.status, eleventh.body.code]).toEqual([409, 'OUT_OF_STOCK']);
    expect(await stock('LAMP')).toEqual({ available: 0, reserved: 10, sold: 0 });
    // the repair released the order itself, as the cancel would have: no counter was moved by hand
    expect([report.ordersFinished, report.drift]).toEqual([1, []]);
  });

  it('finishes giving a cancelled order’s desks back in Redis when the buyer cancels again', async () => {
    const orderId = await system.checkout('ann', [{ skuId: 'DESK', qty: 3 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await cancelledInMysqlOnly(orderId, 'ann', 'DESK', 3);

    const again = await cancel(orderId, 'ann');
    expect([again.status, again.body.status]).toEqual([200, 'CANCELLED']);
    expect(await stock('DESK')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect((await reconcile()).output).toContain('No drift: Redis matches the MySQL ledger.');
  });

  it('sells a paid order’s 2 chairs once when its commit never reached Redis, the repair ran, and the settle job ran again', async () => {
    await system.createSku({ skuId: 'CHAIR', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const orderId = await system.checkout('ann', [{ skuId: 'CHAIR', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const reservation = await system.env.redis.hgetall(orderKey(orderId));
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    await waitFor(async () => (await stock('CHAIR')).sold === 2, { what: 'the settle job to commit the chairs' });
    expect(await stock('CHAIR')).toEqual({ available: 8, reserved: 0, sold: 2 });
    // the ledger has the commit; Redis, as if its commit had never run
    await system.env.redis
      .multi()
      .hset(orderKey(orderId), reservation)
      .hincrby(skuKey('CHAIR'), 'sold', -2)
      .hincrby(skuKey('CHAIR'), 'reserved', 2)
      .exec();

    const report = await reconciler().reconcile({ repair: true });
    expect(await stock('CHAIR')).toEqual({ available: 8, reserved: 0, sold: 2 });
    // the settle job replayed from the dead letters commits again: a no-op by now
    expect(await system.workers.deps.inventory.commitStock(orderId)).toEqual({ status: 'already' });
    expect(await stock('CHAIR')).toEqual({ available: 8, reserved: 0, sold: 2 });
    expect([report.ordersFinished, report.drift]).toEqual([1, []]);
  });

  it('moves 3 lost mugs back once when two repairs run at the same time', async () => {
    await system.env.redis.hincrby(skuKey('MUG'), 'available', -3);
    const [first, second] = await Promise.all([reconciler(300).reconcile({ repair: true }), reconciler(300).reconcile({ repair: true })]);
    expect(await stock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
    // one of them repaired the drift; the other waited for it and found none left
    expect([first.repaired, second.repaired].sort()).toEqual([false, true]);
  });

  it('runs one periodic check at a time: a check due while the last still runs is skipped, not queued behind it', async () => {
    await system.env.redis.hincrby(skuKey('MUG'), 'available', -1);
    const [first, second] = await Promise.all([reconciler(300).checkUnlessRunning(), reconciler(300).checkUnlessRunning()]);
    const reports = [first, second].filter((report) => report !== undefined);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.drift.map((drift) => [drift.skuId, drift.available])).toEqual([['MUG', -1]]);
    await reconciler().reconcile({ repair: true });
    expect(await stock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  it('recreates a split SKU whose bucket 0 Redis lost around the bucket still selling, and goes on to repair the other SKUs', async () => {
    await system.createSku({ skuId: 'TENT', priceCents: 9_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', stockBuckets: 2 });
    await system.createSku({ skuId: 'RUG', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    // a buyer of bucket 1 holds a tent there
    const camper = 'split-buyer';
    expect(new StockKeys('').bucketOf(camper, 2)).toBe(1);
    const orderId = await system.checkout(camper, [{ skuId: 'TENT', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // the node of bucket 0 lost its keys; the rugs drifted too
    await system.env.redis.del(skuKey('TENT'));
    await system.env.redis.hincrby(skuKey('RUG'), 'available', -2);

    const report = await reconciler().reconcile({ repair: true });
    expect(report.unitsLeft).toEqual([]);
    expect(await stock('TENT')).toEqual({ available: 9, reserved: 1, sold: 0 });
    expect(await stock('RUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => ['TENT', 'RUG'].includes(drift.skuId))).toEqual([]);
  });

  it('refuses checkouts of a flash-sale kite whose counters Redis lost before a refund put 2 back, and after the repair sells exactly its 10 under its sale rules', async () => {
    const flashSale = { priceCents: 1_500, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z', perUserLimit: 2 };
    await system.createSku({ skuId: 'KITE', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale });
    const orderId = await system.checkout('kim', [{ skuId: 'KITE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('kim'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(await stock('KITE')).toEqual({ available: 8, reserved: 0, sold: 2 });

    // Redis loses the kite's counters; then the buyer's refund puts the 2 kites back on sale (the api and the refund job both)
    await system.env.redis.del(skuKey('KITE'));
    expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('kim'), body: { reason: 'no wind' } })).status).toBe(202);
    await system.waitForRefund(orderId);
    const lost = await buy('kite-early', 'KITE', 1);
    expect([lost.status, lost.body.code]).toEqual([422, 'UNKNOWN_SKU']);

    const report = await reconciler().reconcile({ repair: true });
    expect(report.drift.filter((drift) => drift.skuId === 'KITE').map((drift) => drift.missing)).toEqual([true]);
    expect(await system.env.redis.hgetall(skuKey('KITE'))).toMatchObject({
      deduction: 'placement',
      saleStartsAt: String(Date.parse(flashSale.startsAt)),
      saleEndsAt: String(Date.parse(flashSale.endsAt)),
      perUserLimit: '2',
      orderType: 'standard',
    });
    expect(await stock('KITE')).toEqual({ available: 10, reserved: 0, sold: 0 });

    // two per buyer, as the flash sale allows
    const greedy = await buy('kite-greedy', 'KITE', 3);
    expect([greedy.status, greedy.body.code]).toEqual([422, 'LIMIT_EXCEEDED']);
    for (const buyer of ['k1', 'k2', 'k3', 'k4', 'k5']) expect((await buy(buyer, 'KITE', 2)).status).toBe(202);
    const eleventh = await buy('k6', 'KITE', 1);
    expect([eleventh.status, eleventh.body.code]).toEqual([409, 'OUT_OF_STOCK']);
    expect(await stock('KITE')).toEqual({ available: 0, reserved: 10, sold: 0 });
  });

  it('gives counters left without their rules (a restock of a lost SKU made them so before) the rules back and the ledger’s counts, then sells exactly the 10 gift cards', async () => {
    await system.createSku({ skuId: 'GIFT', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'digital', stock: 10, deduction: 'placement', orderType: 'virtual' });
    await system.env.redis.del(skuKey('GIFT'));
    await system.env.redis.hset(skuKey('GIFT'), { available: 3, sold: -1 });
    const refused = await buy('gift-early', 'GIFT', 1);
    expect([refused.status, refused.body.code]).toEqual([422, 'UNKNOWN_SKU']);

    await reconciler().reconcile({ repair: true });
    expect(await system.env.redis.hgetall(skuKey('GIFT'))).toMatchObject({ deduction: 'placement', saleEndsAt: '0', orderType: 'virtual' });
    expect(await stock('GIFT')).toEqual({ available: 10, reserved: 0, sold: 0 });
    const orders = [];
    for (const buyer of ['g1', 'g2', 'g3', 'g4', 'g5', 'g6', 'g7', 'g8', 'g9', 'g10']) {
      const answer = await buy(buyer, 'GIFT', 1);
      expect(answer.status).toBe(202);
      orders.push(answer.body.orderId as string);
    }
    expect((await buy('g11', 'GIFT', 1)).body.code).toBe('OUT_OF_STOCK');
    expect(await stock('GIFT')).toEqual({ available: 0, reserved: 10, sold: 0 });
    expect((await system.waitForStatus(orders[0]!, 'PENDING_PAYMENT')).type).toBe('virtual');
  });

  it('gives a cancelled order’s 2 vases back once when its Redis release failed and Redis lost the vase’s counters too: the repair, then the payment deadline job', async () => {
    await system.createSku({ skuId: 'VASE', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    const orderId = await system.checkout('ann', [{ skuId: 'VASE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await cancelledInMysqlOnly(orderId, 'ann', 'VASE', 2);
    await system.env.redis.del(skuKey('VASE'));

    await reconciler().reconcile({ repair: true });
    expect(await stock('VASE')).toEqual({ available: 10, reserved: 0, sold: 0 });
    await closeUnpaidOrder(system.workers.deps, { orderId, action: 'expire', actor: 'system' });
    expect(await stock('VASE')).toEqual({ available: 10, reserved: 0, sold: 0 });
  });

  describe('a SKU split into 4 buckets, one or two of which Redis lost', () => {
    const admin = () => system.token('ops', 'admin');
    const bucketKey = (skuId: string, bucket: number) => `${prefix()}{g${bucket}}:sku:${skuId}`;
    const buckets = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin() })).body.bucketStock;
    /** The first of `name`-0, `name`-1, … whose checkouts of a SKU split 4 ways run in this bucket. */
    const buyerOf = (bucket: number, name: string) => {
      for (let i = 0; ; i++) if (new StockKeys('').bucketOf(`${name}-${i}`, 4) === bucket) return `${name}-${i}`;
    };
    const paid = async (buyer: string, skuId: string, qty: number) => {
      const orderId = await system.checkout(buyer, [{ skuId, qty }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    };
    /** Accepted by the intake and not yet in MySQL: the reservation only, no persist job. */
    const inFlight = (buyer: string, skuId: string, qty: number) => system.workers.deps.inventory.reserveStock(reservationOf(buyer, [{ skuId, qty }]));

    it('rebuilds bucket 2 with its rules while a transfer into it is open, counting its paid, unpaid and not yet persisted orders, and then sells exactly the 40 candles left to 100 racing buyers', async () => {
      const { redis, db } = system.env;
      await system.createSku({ skuId: 'CANDLE', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 64, deduction: 'placement', stockBuckets: 4 });
      // the merchant set the stock once: every bucket is in the SKU's stock generation 1, 13 candles each
      expect((await system.request('PUT', '/v1/admin/skus/CANDLE/stock', { token: admin(), body: { stock: 52 } })).status).toBe(200);
      await paid(buyerOf(2, 'candle-paid'), 'CANDLE', 3);
      await paid(buyerOf(1, 'candle-paid'), 'CANDLE', 2);
      await system.waitForStatus(await system.checkout(buyerOf(2, 'candle-unpaid'), [{ skuId: 'CANDLE', qty: 2 }]), 'PENDING_PAYMENT');
      await inFlight(buyerOf(2, 'candle-in-flight'), 'CANDLE', 4);
      await inFlight(buyerOf(0, 'candle-in-flight'), 'CANDLE', 1);
      // a rebalance took 5 candles off bucket 0 for bucket 2 a minute ago, and its process died before giving them
      await system.workers.deps.inventory.takeForTransfer({ transferId: 'candle-1', skuId: 'CANDLE', from: 0, to: 2, qty: 5 }, new Date(Date.now() - 60_000));
      expect(await buckets('CANDLE')).toEqual([
        { available: 7, reserved: 1, sold: 0 },
        { available: 11, reserved: 0, sold: 2 },
        { available: 4, reserved: 6, sold: 3 },
        { available: 13, reserved: 0, sold: 0 },
      ]);

      // Redis lost bucket 2's counters (a failover to a replica that was behind); its orders' records are still there
      await redis.del(bucketKey('CANDLE', 2));
      const lost = await system.request('POST', '/v1/orders', {
        token: system.token(buyerOf(2, 'candle-early')),
        headers: { 'idempotency-key': 'early' },
        body: { items: [{ skuId: 'CANDLE', qty: 1 }], address: buyerAddress },
      });
      expect([lost.status, lost.body.code]).toEqual([422, 'UNKNOWN_SKU']);
      // the periodic check reports it rather than failing
      expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'CANDLE').map((drift) => drift.missing)).toEqual([true]);

      const report = await reconciler().reconcile({ repair: true });
      const candle = report.drift.find((drift) => drift.skuId === 'CANDLE');
      // the ledger's 45 available less the 5 in flight and the 5 on their way; its 2 reserved and the 5 in flight
      expect([candle?.missing, candle?.expected]).toEqual([true, { available: 35, reserved: 7, sold: 5 }]);
      expect(report.unitsLeft).toEqual([]);
      for (const bucket of [0, 1, 2, 3]) {
        expect(await redis.hgetall(bucketKey('CANDLE', bucket))).toMatchObject({ deduction: 'placement', buckets: '4', orderType: 'standard', generation: '1' });
      }
      // bucket 2 holds what it held, and the 5 candles given to it
      expect(await buckets('CANDLE')).toEqual([
        { available: 7, reserved: 1, sold: 0 },
        { available: 11, reserved: 0, sold: 2 },
        { available: 9, reserved: 6, sold: 3 },
        { available: 13, reserved: 0, sold: 0 },
      ]);
      const moved = await db.selectFrom('stock_ledger').select('qty').where('ref', 'like', 'transfer:candle-1:%').orderBy('id').execute();
      expect(moved.map((row) => Number(row.qty))).toEqual([-5, 5]);
      expect((await system.workers.deps.inventory.openTransfers(new Date())).filter((transfer) => transfer.skuId === 'CANDLE')).toEqual([]);
      expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'CANDLE')).toEqual([]);

      expect(await raceForOneEach(system, 'CANDLE')).toBe(40);
      expect(await stock('CANDLE')).toEqual({ available: 0, reserved: 47, sold: 5 });
    });

    it('counts the lanterns held by orders not yet in MySQL when Redis lost buckets 0 and 2, leaving no drift, and then sells exactly the 16 left to 100 racing buyers', async () => {
      const { redis } = system.env;
      await system.createSku({ skuId: 'LANTERN', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement', stockBuckets: 4 });
      await paid(buyerOf(1, 'lantern-paid'), 'LANTERN', 1);
      await inFlight(buyerOf(0, 'lantern-in-flight'), 'LANTERN', 1);
      await inFlight(buyerOf(2, 'lantern-in-flight'), 'LANTERN', 2);
      // the node holding buckets 0 and 2 came back without their counters (one key per command: two slots)
      await redis.del(bucketKey('LANTERN', 0));
      await redis.del(bucketKey('LANTERN', 2));

      const report = await reconciler().reconcile({ repair: true });
      expect(report.drift.find((drift) => drift.skuId === 'LANTERN')?.expected).toEqual({ available: 16, reserved: 3, sold: 1 });
      expect(report.unitsLeft).toEqual([]);
      expect(await stock('LANTERN')).toEqual({ available: 16, reserved: 3, sold: 1 });
      expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'LANTERN')).toEqual([]);

      expect(await raceForOneEach(system, 'LANTERN')).toBe(16);
      expect(await stock('LANTERN')).toEqual({ available: 0, reserved: 19, sold: 1 });
    });

    it('rebuilds bucket 2 of the lamps while 150 buyers of the buckets Redis kept reserve one each, between its reading and its correction: Redis then holds the 250 the ledger has left, not 400', async () => {
      const { redis, db } = system.env;
      await system.createSku({ skuId: 'FLOODLAMP', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 400, deduction: 'placement', stockBuckets: 4 });
      await redis.del(bucketKey('FLOODLAMP', 2));
      const buyers = Array.from({ length: 400 }, (_, i) => `floodlamp-${i}`)
        .filter((buyer) => new StockKeys('').bucketOf(buyer, 4) !== 2)
        .slice(0, 150);
      const orderIds: string[] = [];
      // the repair has read the drift (the ledger's 400, Redis's 300): the buckets it kept go on selling meanwhile
      const catalog = new CatalogRepository(db);
      const findSku = catalog.findSku.bind(catalog);
      catalog.findSku = async (skuId) => {
        if (skuId === 'FLOODLAMP' && orderIds.length === 0) {
          const answers = await Promise.all(
            buyers.map((buyer) => system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': 'meanwhile' }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } })),
          );
          expect(answers.filter((answer) => answer.status !== 202).map((answer) => answer.body)).toEqual([]);
          orderIds.push(...answers.map((answer) => answer.body.orderId as string));
        }
        return findSku(skuId);
      };
      const repairing = new StockReconciler(
        { redis, inventory: system.workers.deps.inventory, ledger: new StockLedgerRepository(db), catalog, coupons: new CouponRepository(db), log: pino({ level: 'silent' }) },
        { settleMs: 100 },
      );

      const report = await repairing.reconcile({ repair: true });
      expect(report.drift.find((drift) => drift.skuId === 'FLOODLAMP')?.expected).toEqual({ available: 400, reserved: 0, sold: 0 });
      expect(orderIds).toHaveLength(150);
      for (const orderId of orderIds) await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect(await stock('FLOODLAMP')).toEqual({ available: 250, reserved: 150, sold: 0 });
      expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'FLOODLAMP')).toEqual([]);
    });

    it('leaves alone a SKU whose merchant lowered its stock from 100 to 20 with the set still under way (Redis set, MySQL not yet committed): the repair does not put the 80 back on sale', async () => {
      const { db } = system.env;
      await system.createSku({ skuId: 'SHELF', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement', stockBuckets: 4 });
      const catalog = new CatalogRepository(db);
      let redisSet!: () => void;
      const setInRedis = new Promise<void>((resolve) => (redisSet = resolve));
      let commit!: () => void;
      const committing = new Promise<void>((resolve) => (commit = resolve));
      // the merchant's set as the api runs it, its MySQL commit slower than the repair's two readings
      const sets = new StockSets({
        inventory: system.workers.deps.inventory,
        clock: () => new Date(),
        record: (skuId, quantity, ref, side) =>
          catalog.setStock(skuId, quantity, ref, {
            ...side,
            set: async () => {
              const previous = await side.set();
              redisSet();
              await committing;
              return previous;
            },
          }),
      });
      const setting = sets.set('SHELF', 20, 'shelf-recount', () => undefined);
      await setInRedis;

      const report = await reconciler(300).reconcile({ repair: true });
      commit();
      expect(await setting).toBe('set');
      expect(report.drift.filter((drift) => drift.skuId === 'SHELF')).toEqual([]);
      expect(await stock('SHELF')).toEqual({ available: 20, reserved: 0, sold: 0 });
      expect((await reconciler().reconcile({ repair: false })).drift.filter((drift) => drift.skuId === 'SHELF')).toEqual([]);
      expect(await raceForOneEach(system, 'SHELF')).toBe(20);
    });

    it('refuses the merchant’s set of the benches while Redis has lost bucket 2 and its 10, so the repair does not put them back on top of it; once the repair has recreated the bucket the set sells exactly 20', async () => {
      const { redis } = system.env;
      await system.createSku({ skuId: 'BENCH', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
      const ledger = () => ledgerAvailable(system.env.db, 'BENCH');
      // the node holding bucket 2 came back empty: its 10 benches are in the ledger alone
      await redis.del(bucketKey('BENCH', 2));

      // measured without bucket 2, the set would write 20 - 30 to the ledger, and the repair then put its 10 back: 30 on sale
      const refused = await system.request('PUT', '/v1/admin/skus/BENCH/stock', { token: admin(), body: { stock: 20 } });
      expect([refused.status, refused.body.code, refused.headers['retry-after']]).toEqual([503, 'SERVICE_UNAVAILABLE', '60']);
      expect(await system.workers.deps.inventory.openStockSet('BENCH')).toBeNull();

      expect((await reconciler().reconcile({ repair: true })).unitsLeft).toEqual([]);
      expect([await stock('BENCH'), await ledger()]).toEqual([{ available: 40, reserved: 0, sold: 0 }, 40]);

      expect((await system.request('PUT', '/v1/admin/skus/BENCH/stock', { token: admin(), body: { stock: 20 } })).status).toBe(200);
      expect([await buckets('BENCH'), await ledger()]).toEqual([Array.from({ length: 4 }, () => ({ available: 5, reserved: 0, sold: 0 })), 20]);
      expect((await reconciler().reconcile({ repair: true })).drift.filter((drift) => drift.skuId === 'BENCH')).toEqual([]);
      expect(await raceForOneEach(system, 'BENCH')).toBe(20);
    });
  });

  it('says which units it could not take back and that a SKU is oversold, and exits 2', async () => {
    // Redis gains 3 pens nobody put there, and buyers reserve all 8 it says it has: the ledger's 5 are oversold by 3
    await system.env.redis.hincrby(skuKey('PEN'), 'available', 3);
    const orders = [await system.checkout('p1', [{ skuId: 'PEN', qty: 4 }]), await system.checkout('p2', [{ skuId: 'PEN', qty: 4 }])];
    for (const orderId of orders) await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    const { output, exitCode } = await reconcile('--repair');
    expect(exitCode).toBe(2);
    expect(output).toContain('OVERSOLD: PEN: the ledger has -3 units available');
    expect(output).toContain('NOT REPAIRED: PEN: 3 unit(s) too many in Redis could not be taken back');
    expect(output).not.toContain('Repaired: the Redis counters now match the ledger.');
    expect(await stock('PEN')).toEqual({ available: 0, reserved: 8, sold: 0 });
  });

  it('publishes coupons again after Redis lost its data, with each buyer’s uses and their total counted from MySQL, and gives them back when the unpaid orders close', async () => {
    // for the first 4 orders
    const coupon = { code: 'SAVE10', kind: 'percent', percentOff: 10, minSpendCents: 1_000, perBuyerLimit: 1, totalLimit: 4, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    const annOrder = await buy('ann', 'SCARF', 1, 'SAVE10');
    const catOrder = await buy('cat', 'SCARF', 1, 'SAVE10');
    expect([annOrder.status, catOrder.status]).toEqual([202, 202]);
    await system.waitForStatus(annOrder.body.orderId, 'PENDING_PAYMENT');
    await system.waitForStatus(catOrder.body.orderId, 'PENDING_PAYMENT');

    // Redis restarts without its data: every stock key of this system is gone
    const { redis } = system.env;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix()}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');

    // nothing at all under the prefix (the stock check is off here): the repair refuses until the operator, the prefix checked, adds the flag ("Redis restarted")
    const refused = await reconcile('--repair');
    expect([refused.exitCode, refused.output]).toEqual([3, expect.stringContaining(`NOTHING UNDER THE KEY PREFIX: Redis holds no key of the shop's at all under ${prefix()}`)]);
    const { output, exitCode } = await reconcile('--repair', '--into-empty-prefix');
    // 2: the pens above are still oversold
    expect([exitCode, output]).toEqual([2, expect.stringContaining('1 coupon not yet ended published to Redis from MySQL; 2 buyer(s)\' coupon uses counted again.')]);
    expect(await stock('SCARF')).toEqual({ available: 8, reserved: 2, sold: 0 });
    expect((await buy('ben', 'SCARF', 1, 'SAVE10')).status).toBe(202);
    const checkoutAgain = (buyer: string, key: string) =>
      system.request('POST', '/v1/orders', {
        token: system.token(buyer),
        headers: { 'idempotency-key': key },
        body: { items: [{ skuId: 'SCARF', qty: 1 }], address: buyerAddress, couponCode: 'SAVE10' },
      });
    const twice = await checkoutAgain('ann', 'ann-again');
    expect([twice.status, twice.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);

    // the unpaid orders close without their reservation records, which Redis lost: their uses go back all the same
    await system.passPaymentDeadline(annOrder.body.orderId);
    await closeUnpaidOrder(system.workers.deps, { orderId: annOrder.body.orderId, action: 'expire', actor: 'system' });
    expect((await cancel(catOrder.body.orderId, 'cat')).status).toBe(200);
    expect((await checkoutAgain('ann', 'ann-after-expiry')).status).toBe(202);
    expect((await checkoutAgain('cat', 'cat-after-cancel')).status).toBe(202);
    // ben's, ann's and cat's orders hold three of the four uses: one more buyer gets the last
    expect((await checkoutAgain('dan', 'dan-last')).status).toBe(202);
    const late = await checkoutAgain('eve', 'eve-late');
    expect([late.status, late.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });
});
