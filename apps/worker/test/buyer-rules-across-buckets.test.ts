import { StockKeys } from '@orders/stock';
import { buyerAddress, buyerOutsideBucketZero, createSku, createTestEnv, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type HttpAnswer, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// a SKU sold whole, whose carts run in {g0}, and three split into buckets, whose carts run in the buyer's bucket's group
const BUCKETS = { PLAIN: 1, HOT4: 4, HOT8: 8, HOT16: 16 };
const SKUS = Object.keys(BUCKETS) as Array<keyof typeof BUCKETS>;

describe("a buyer's coupon, Idempotency-Key and bucket, whichever stock group their cart runs in", () => {
  let env: TestEnv;
  let api: ApiProcess;
  const workers: SpawnedProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnv('buyer_rules', { WORKER_QUEUES: 'orders,timers', WORKER_CONCURRENCY: '50' });
    api = await startApiProcess(env.env, 300);
    workers.push(spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }), spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' }));
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    for (const skuId of SKUS) {
      await createSku(api, admin, { skuId, title: skuId, priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement', stockBuckets: BUCKETS[skuId] });
    }
    await createSku(api, admin, { skuId: 'FEW', title: 'Few', priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 400, deduction: 'placement', stockBuckets: 4 });
    const coupon = { code: 'ONCE', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    await api?.close();
    await env?.cleanup();
  });

  const checkout = (buyer: string, key: string, items: Array<{ skuId: string; qty: number }>, couponCode?: string) =>
    api.request('POST', '/v1/orders', {
      token: signToken(env.config.AUTH_JWT_SECRET, { sub: buyer, role: 'buyer' }),
      headers: { 'idempotency-key': key },
      body: { items, address: buyerAddress, ...(couponCode ? { couponCode } : {}) },
    });
  /** Each buyer sends one cart of each SKU, all buyers and carts at once; the answers by buyer. */
  const race = async (buyers: string[], keyOf: (skuId: string) => string, couponCode?: string) => {
    const answers = await Promise.all(buyers.flatMap((buyer) => SKUS.map(async (skuId) => [buyer, await checkout(buyer, keyOf(skuId), [{ skuId, qty: 1 }], couponCode)] as const)));
    const accepted = answers.filter(([, answer]) => answer.status === 202);
    const refused = answers.filter(([, answer]) => answer.status !== 202).map(([, answer]: readonly [string, HttpAnswer]) => `${answer.status} ${answer.body.code}`);
    return { accepted, refused };
  };
  const persisted = async (orderIds: string[]) =>
    waitFor(
      async () => {
        const rows = await env.db.selectFrom('orders').select(['order_id', 'user_id']).where('order_id', 'in', orderIds).execute();
        return rows.length === orderIds.length && rows;
      },
      { what: `${orderIds.length} orders in MySQL`, timeoutMs: 30_000, intervalMs: 250 },
    );

  it('discounts one order of each of 100 buyers with a once-per-buyer coupon when each sends four carts at once, persisted by two workers', { timeout: 90_000 }, async () => {
    const buyers = Array.from({ length: 100 }, (_, i) => `coupon-buyer-${i}`);
    const { accepted, refused } = await race(buyers, (skuId) => `coupon-${skuId}`, 'ONCE');

    expect(accepted.map(([buyer]) => buyer).sort()).toEqual([...buyers].sort());
    expect(refused).toEqual(Array.from({ length: 300 }, () => '422 COUPON_LIMIT_EXCEEDED'));
    const orderIds = accepted.map(([, answer]) => answer.body.orderId as string);
    await persisted(orderIds);
    const redemptions = await env.db.selectFrom('coupon_redemptions').select(['user_id', 'order_id', 'status']).where('code', '=', 'ONCE').execute();
    expect(redemptions.map((r) => [r.user_id, r.status]).sort()).toEqual(buyers.map((buyer) => [buyer, 'used']).sort());
    expect(redemptions.map((r) => r.order_id).sort()).toEqual([...orderIds].sort());
  });

  it('answers one Idempotency-Key with one order whichever carts it comes with', { timeout: 90_000 }, async () => {
    const buyer = buyerOutsideBucketZero('keeper', 4, 8);
    const answers: string[] = [];
    for (const skuId of ['PLAIN', 'HOT4', 'HOT8', 'PLAIN']) {
      const answer = await checkout(buyer, 'same-key', [{ skuId, qty: 1 }]);
      answers.push(answer.status === 202 ? `202 ${answer.body.orderId}` : `${answer.status} ${answer.body.code}`);
    }
    expect(answers).toEqual([answers[0], '422 IDEMPOTENCY_CONFLICT', '422 IDEMPOTENCY_CONFLICT', answers[0]]);
    expect(answers[0]).toMatch(/^202 /);

    const buyers = Array.from({ length: 100 }, (_, i) => `key-buyer-${i}`);
    const { accepted, refused } = await race(buyers, () => 'one-key');
    expect(accepted.map(([buyer]) => buyer).sort()).toEqual([...buyers].sort());
    expect(refused).toEqual(Array.from({ length: 300 }, () => '422 IDEMPOTENCY_CONFLICT'));
    const rows = await persisted(accepted.map(([, answer]) => answer.body.orderId as string));
    expect(rows.map((row) => row.user_id).sort()).toEqual([...buyers].sort());
  });

  it('sells a buyer the 5 units they ask for when their bucket holds 3 and the others hundreds', async () => {
    const keys = new StockKeys(env.config.REDIS_KEY_PREFIX);
    const [taker, asker] = Array.from({ length: 200 }, (_, i) => `few-${i}`).filter((id) => keys.bucketOf(id, 4) === 2);
    expect((await checkout(taker!, 'take-97', [{ skuId: 'FEW', qty: 97 }])).status).toBe(202);
    const first = await checkout(asker!, 'five', [{ skuId: 'FEW', qty: 5 }]);
    expect([first.status, first.body.code]).toEqual([409, 'OUT_OF_STOCK']);
    // the OUT_OF_STOCK asked the rebalancer for the 5 units, as a buyer retrying finds
    const bought = await waitFor(
      async () => {
        const answer = await checkout(asker!, 'five', [{ skuId: 'FEW', qty: 5 }]);
        return answer.status === 202 && answer;
      },
      { what: 'the 5 units in the buyer’s bucket', timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(bought.body.orderId).toMatch(/-g2$/);
  });
});
