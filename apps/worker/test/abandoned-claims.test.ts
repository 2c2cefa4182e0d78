import { CatalogRepository, CouponRepository, StockLedgerRepository } from '@orders/persistence';
import { StockKeys } from '@orders/stock';
import { buyerAddress, createSku, runOperatorCommand, signToken, startApiProcess, startFailingRedisLink, waitFor, type ApiProcess } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StockReconciler } from '../src/stock-reconciler.js';
import { startIntakeAndWorkers, type IntakeAndWorkers } from './support/intake-and-workers.js';

/** 10 s to abandon a claim: the early check below comes well within it on a loaded box too (a kill, a checkout and a check after the claim). */
const COMMAND_TIMEOUT_MS = 2_000;
/** How long a claim nobody took up may still be under way: five REDIS_COMMAND_TIMEOUT_MS. */
const CLAIM_ABANDONED_AFTER_MS = 5 * COMMAND_TIMEOUT_MS;
const BUCKETS = 4;
/** What a checkout's claim of its key alone names among the commands before its reservation: the order's coupon hold. */
const CLAIM = ':coupon-held:';

describe('the stock check and a checkout whose api died between its claim and its reservation, its buyer never back under that key', () => {
  let system: IntakeAndWorkers;
  const keys = new StockKeys('');
  /** Buyers whose carts of a SKU in buckets run outside bucket 0: their keys and coupon uses are claimed in their own group first. */
  const [killedBuyer, otherKilledBuyer, acceptedBuyer, clusterBuyer] = Array.from({ length: 40 }, (_, i) => `lamp-buyer-${i}`).filter((buyer) => keys.bucketOf(buyer, BUCKETS) !== 0);

  beforeAll(async () => {
    system = await startIntakeAndWorkers('abandoned_claims', { REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) });
    const { http } = system;
    await createSku(http, token('ops', 'admin'), { skuId: 'LAMP', title: 'Lamp', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement', stockBuckets: BUCKETS });
    expect((await http.request('POST', '/v1/admin/coupons', { token: token('ops', 'admin'), body: coupon })).status).toBe(201);
  }, 60_000);
  afterAll(async () => system?.close());

  const token = (sub: string, role: 'buyer' | 'admin' = 'buyer') => signToken(system.env.config.AUTH_JWT_SECRET, { sub, role });
  const checkout = (buyer: string, key: string, through: Pick<ApiProcess, 'request'> = system.http) =>
    through.request('POST', '/v1/orders', { token: token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: 'ONCE' } });
  const claimOf = (buyer: string, key: string) => `${system.env.config.REDIS_KEY_PREFIX}${keys.groupOf(buyer)}:idem:${buyer}:${key}`;
  /** once per buyer, 3.00 off */
  const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };

  /** npm run reconcile as an operator runs it, in its own process, against this test's database and prefix. */
  const reconcile = () => runOperatorCommand('reconcile', [], system.env.env);

  /** The stock check a worker serving timers runs every RECONCILE_INTERVAL_MS, with its log lines kept. */
  function scheduledCheck(lines: Array<Record<string, unknown>>): StockReconciler {
    const { redis, db } = system.env;
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    return new StockReconciler({ redis, inventory: system.workers.deps.inventory, ledger: new StockLedgerRepository(db), catalog: new CatalogRepository(db), coupons: new CouponRepository(db), log }, { settleMs: 100 });
  }

  /** A checkout of `buyer` under `key` through an api process killed after its claim reached Redis and before its reservation did. */
  async function killedBetweenClaimAndReservation(buyer: string, key: string): Promise<void> {
    const { env } = system;
    const redisUrl = new URL(env.config.REDIS_URL);
    const link = await startFailingRedisLink({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    const killed = await startApiProcess({ ...env.env, REDIS_URL: `redis://127.0.0.1:${link.port}` }, 2);
    try {
      const claimed = link.dieAfter(CLAIM);
      const lost = checkout(buyer, key, killed).catch(() => null);
      await claimed;
      await waitFor(async () => (await env.redis.hexists(claimOf(buyer, key), 'g')) === 1, { what: 'the claim of the killed checkout' });
      await killed.process.killAll();
      await lost;
    } finally {
      await link.close();
      await killed.close();
    }
  }

  /** When the claim was last taken up, as the stock check judges it (its 'l', by Redis's clock on this box). */
  const takenUpAt = async (buyer: string, key: string) => Number(await system.env.redis.hget(claimOf(buyer, key), 'l'));
  const untilTakenForGone = (claimedAt: number) => new Promise((resolve) => setTimeout(resolve, CLAIM_ABANDONED_AFTER_MS - (Date.now() - claimedAt) + 200));

  it("gives the coupon's use back once nobody took the claim up for five command timeouts: the buyer's checkout under a new key is accepted with its discount", { timeout: 90_000 }, async () => {
    const { env, http } = system;
    // another buyer's checkout whose reservation landed: its claim stays, holding the order's use
    expect((await checkout(acceptedBuyer!, 'kept')).status).toBe(202);

    await killedBetweenClaimAndReservation(killedBuyer!, 'first');
    const claimedAt = await takenUpAt(killedBuyer!, 'first');
    // the buyer's app makes a new key: their coupon reads as used by an order that never was
    const refused = await checkout(killedBuyer!, 'second');
    expect([refused.status, refused.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
    // a check while the request holding the claim may still be under way leaves it
    const lines: Array<Record<string, unknown>> = [];
    const early = await scheduledCheck(lines).checkUnlessRunning();
    expect(Date.now() - claimedAt).toBeLessThan(CLAIM_ABANDONED_AFTER_MS);
    expect(await env.redis.exists(claimOf(killedBuyer!, 'first'))).toBe(1);

    await untilTakenForGone(claimedAt);
    const report = await scheduledCheck(lines).checkUnlessRunning();
    const again = await checkout(killedBuyer!, 'third');
    expect([again.status, again.body.code]).toEqual([202, undefined]);
    const order = await waitFor(
      async () => {
        const found = await http.request('GET', `/v1/orders/${again.body.orderId}`, { token: token(killedBuyer!) });
        return found.body.amounts && found.body;
      },
      { what: 'the order persisted, priced' },
    );
    expect(order.amounts).toMatchObject({ subtotalCents: 3_900, discountCents: 300 });
    expect(order.benefits.coupon).toEqual({ code: 'ONCE', discountCents: 300 });
    // the coupon's one use is that order's now: given back once, taken once
    const fourth = await checkout(killedBuyer!, 'fourth');
    expect([fourth.status, fourth.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);

    // the checks after: the claims whose reservations landed, as old, are left alone, their uses their orders'
    const after = await scheduledCheck(lines).checkUnlessRunning();
    expect(after?.claimsAbandoned).toBe(0);
    expect(await env.redis.exists(claimOf(acceptedBuyer!, 'kept'))).toBe(1);
    const another = await checkout(acceptedBuyer!, 'another');
    expect([another.status, another.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);

    // what each check reported and logged: the one claim, abandoned once
    expect([early?.claimsAbandoned, report?.claimsAbandoned, after?.claimsAbandoned]).toEqual([0, 1, 0]);
    expect(await env.redis.exists(claimOf(killedBuyer!, 'first'))).toBe(0);
    expect(lines.filter((line) => /claim/.test(String(line.msg)))).toEqual([
      expect.objectContaining({ level: 40, userId: killedBuyer, idempotencyKey: 'first', couponCode: 'ONCE', orderIds: [expect.stringMatching(/-g[1-3]$/)], msg: expect.stringMatching(/^checkout claim abandoned/) }),
    ]);
  });

  it("leaves the claim of an order MySQL holds when its cart's group lost the order's record (a Redis Cluster node restarted empty): the use stays the order's", { timeout: 90_000 }, async () => {
    const { env, http } = system;
    const accepted = await checkout(clusterBuyer!, 'kept');
    expect(accepted.status).toBe(202);
    await waitFor(async () => (await http.request('GET', `/v1/orders/${accepted.body.orderId}`, { token: token(clusterBuyer!) })).body.amounts, { what: 'the order persisted' });
    const claimedAt = await takenUpAt(clusterBuyer!, 'kept');
    // the node holding the cart's bucket lost the key's record; the buyer's own group kept the claim
    const cartGroup = (await env.redis.hget(claimOf(clusterBuyer!, 'kept'), 'g'))!;
    expect(await env.redis.del(`${env.config.REDIS_KEY_PREFIX}${cartGroup}:idem:${clusterBuyer!}:kept`)).toBe(1);

    await untilTakenForGone(claimedAt);
    const report = await scheduledCheck([]).checkUnlessRunning();
    expect(report?.claimsAbandoned).toBe(0);
    expect(await env.redis.exists(claimOf(clusterBuyer!, 'kept'))).toBe(1);
    const another = await checkout(clusterBuyer!, 'another');
    expect([another.status, another.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
  });

  it('npm run reconcile abandons such a claim too, and says how many it abandoned', { timeout: 90_000 }, async () => {
    await killedBetweenClaimAndReservation(otherKilledBuyer!, 'first');
    const claimedAt = await takenUpAt(otherKilledBuyer!, 'first');
    await untilTakenForGone(claimedAt);

    const { output, exitCode } = await reconcile();
    const again = await checkout(otherKilledBuyer!, 'second');
    expect([again.status, again.body.code]).toEqual([202, undefined]);
    expect(exitCode).toBe(0);
    expect(output).toContain('1 checkout claim abandoned');
    // nothing left to abandon: the next run says nothing of claims
    expect((await reconcile()).output).not.toMatch(/checkout claims? abandoned/);
  });
});
