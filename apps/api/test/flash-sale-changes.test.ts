import { buyerAddress, createTestEnv, spawnApp, waitFor, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const HOUR = 3600_000;
const BUCKETS = 4;
const LIST_PRICE = 99_900;

/**
 * Each test changes the sales of SKUs of its own, so they run side by side while they wait for
 * sales to open and end, the longest first.
 */
describe.concurrent('changing a flash sale', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let worker: SpawnedProcess;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('flash_sale_changes');
    api = await startApi(env, { connections: 100 });
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
    admin = api.token('ops', 'admin');
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
    await env?.cleanup();
  });

  const saleFrom = (fromMs: number, toMs: number, priceCents = 49_900, perUserLimit = 1) => {
    const now = Date.now();
    return { priceCents, startsAt: new Date(now + fromMs).toISOString(), endsAt: new Date(now + toMs).toISOString(), perUserLimit };
  };

  async function createSku(skuId: string, flashSale: ReturnType<typeof saleFrom> | undefined, merchantId = 'shop') {
    const body = { skuId, title: `Sale ${skuId}`, priceCents: LIST_PRICE, merchantId, channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement', stockBuckets: BUCKETS, ...(flashSale ? { flashSale } : {}) };
    expect((await api.request('POST', '/v1/admin/skus', { token: admin, body })).status).toBe(201);
  }

  const changeSale = (skuId: string, body: unknown, token = admin) => api.request('PUT', `/v1/admin/skus/${skuId}/flash-sale`, { token, body });
  const endSale = (skuId: string, body: unknown, token = admin) => api.request('PUT', `/v1/admin/skus/${skuId}/flash-sale/end`, { token, body });
  const withdrawSale = (skuId: string, token = admin) => api.request('DELETE', `/v1/admin/skus/${skuId}/flash-sale`, { token });
  const checkout = (buyer: string, skuId: string, qty = 1, attempt = '') =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), body: { items: [{ skuId, qty }], address: buyerAddress }, headers: { 'idempotency-key': `${buyer}-${skuId}${attempt}` } });

  /** Each bucket's sale as Redis sells by it: [startsAt, endsAt, perUserLimit] in ms. */
  const bucketSales = (skuId: string) =>
    Promise.all(
      Array.from({ length: BUCKETS }, async (_, bucket) =>
        (await env.redis.hmget(`${env.config.REDIS_KEY_PREFIX}{g${bucket}}:sku:${skuId}`, 'saleStartsAt', 'saleEndsAt', 'perUserLimit')).map(Number),
      ),
    );
  const asBuckets = (sale: { startsAt: string; endsAt: string; perUserLimit: number } | null) =>
    Array(BUCKETS).fill(sale ? [Date.parse(sale.startsAt), Date.parse(sale.endsAt), sale.perUserLimit] : [0, 0, 0]);

  const persisted = async (orderId: string) => {
    await waitFor(async () => (await env.db.selectFrom('orders').select('order_id').where('order_id', '=', orderId).executeTakeFirst()) !== undefined, { what: `order ${orderId} in MySQL` });
    const order = await env.db.selectFrom('orders').select(['type', 'payable_cents']).where('order_id', '=', orderId).executeTakeFirstOrThrow();
    return { type: order.type, payableCents: Number(order.payable_cents) };
  };

  it('gives a SKU a sale every day: the next is set once the last has ended and its orders are in MySQL, and its buyers buy their limit again', async ({ expect }) => {
    const today = saleFrom(-HOUR, 4_000, 49_900, 1);
    await createSku('DAILY', today);
    const bought = await checkout('daily-buyer', 'DAILY');
    expect(bought.status).toBe(202);
    expect((await checkout('daily-buyer', 'DAILY', 1, '-again')).body.code).toBe('LIMIT_EXCEEDED');

    await waitFor(async () => Date.now() >= Date.parse(today.endsAt) + 200, { what: 'the end of today\'s sale', timeoutMs: 10_000 });
    // 409 CONFLICT (retry-after) until today's order is in MySQL, priced there by today's sale; each
    // try names a sale opening 8 s after it (past the 5 s cutoff), however long the order takes on a busy box
    let tomorrow = saleFrom(8_000, HOUR, 39_900, 1);
    await waitFor(
      async () => {
        tomorrow = saleFrom(8_000, HOUR, 39_900, 1);
        return (await changeSale('DAILY', tomorrow)).status === 200;
      },
      { what: 'the next sale set', timeoutMs: 30_000 },
    );
    expect(await bucketSales('DAILY')).toEqual(asBuckets(tomorrow));

    await waitFor(async () => Date.now() >= Date.parse(tomorrow.startsAt) + 200, { what: 'the opening of the next sale', timeoutMs: 15_000 });
    const boughtAgain = await checkout('daily-buyer', 'DAILY', 1, '-tomorrow');
    expect(boughtAgain.status).toBe(202);
    expect((await checkout('daily-buyer', 'DAILY', 1, '-once-more')).body.code).toBe('LIMIT_EXCEEDED');
    expect(await persisted(bought.body.orderId)).toEqual({ type: 'flash_sale', payableCents: 49_900 });
    expect(await persisted(boughtAgain.body.orderId)).toEqual({ type: 'flash_sale', payableCents: 39_900 });
  });

  it('sells by the old sale when a change comes inside the cutoff before the opening: no order is priced by a sale Redis did not sell by', async ({ expect }) => {
    const opening = saleFrom(7_000, HOUR, 29_900);
    await createSku('OPENING', opening);
    await waitFor(async () => Date.now() >= Date.parse(opening.startsAt) - 4_000, { what: 'four seconds before the opening', timeoutMs: 10_000 });
    const late = await changeSale('OPENING', saleFrom(HOUR, 2 * HOUR));
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ code: 'SALE_ALREADY_OPEN', opensAt: new Date(opening.startsAt).toISOString() });
    await waitFor(async () => Date.now() >= Date.parse(opening.startsAt) + 200, { what: 'the opening', timeoutMs: 10_000 });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => checkout(`opener-${i}`, 'OPENING')));
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted).toHaveLength(100);
    for (const order of await Promise.all(accepted.slice(0, 10).map((a) => persisted(a.body.orderId)))) expect(order).toEqual({ type: 'flash_sale', payableCents: 29_900 });
  });

  it('ends a running sale early at one instant in every bucket: orders before it keep the sale, those after pay the list price', async ({ expect }) => {
    const running = saleFrom(-HOUR, 2 * HOUR, 49_900, 1);
    await createSku('CALLED-OFF', running);
    const inSale = await checkout('before-the-end', 'CALLED-OFF');
    expect(inSale.status).toBe(202);
    const endsAt = new Date(Date.now() + 7_000).toISOString();
    const answer = await endSale('CALLED-OFF', { endsAt });
    expect(answer.status).toBe(200);
    expect(answer.body.flashSale).toEqual({ ...running, startsAt: new Date(running.startsAt).toISOString(), endsAt });
    expect(await bucketSales('CALLED-OFF')).toEqual(asBuckets({ ...running, endsAt }));
    // sent again (its answer lost): the same answer, nothing else changed
    expect((await endSale('CALLED-OFF', { endsAt })).body).toEqual(answer.body);
    expect((await checkout('still-in-sale', 'CALLED-OFF', 2)).body.code).toBe('LIMIT_EXCEEDED');

    await waitFor(async () => Date.now() >= Date.parse(endsAt) + 200, { what: 'the new end', timeoutMs: 15_000 });
    const afterTheEnd = await checkout('after-the-end', 'CALLED-OFF', 2);
    expect(afterTheEnd.status).toBe(202);
    expect(await persisted(inSale.body.orderId)).toEqual({ type: 'flash_sale', payableCents: 49_900 });
    expect(await persisted(afterTheEnd.body.orderId)).toEqual({ type: 'standard', payableCents: 2 * LIST_PRICE });
    // ended: its end moves no more, and the next sale may follow at once, its orders in MySQL (the counts of its
    // buyers toward its limit, which live to its former end, count in no other sale)
    expect((await endSale('CALLED-OFF', { endsAt: new Date(Date.now() + HOUR).toISOString() })).body.code).toBe('SALE_END_TOO_CLOSE');
    const next = saleFrom(HOUR, 2 * HOUR);
    expect((await changeSale('CALLED-OFF', next)).status).toBe(200);
    expect(await bucketSales('CALLED-OFF')).toEqual(asBuckets(next));
  });

  it('postpones a sale and changes its price and limit before it opens: checkouts name the new opening', async ({ expect }) => {
    await createSku('POSTPONE', saleFrom(HOUR, 2 * HOUR));
    const later = saleFrom(3 * HOUR, 4 * HOUR, 39_900, 2);
    const answer = await changeSale('POSTPONE', later);
    expect(answer.status).toBe(200);
    expect(answer.body.flashSale).toEqual({ ...later, startsAt: new Date(later.startsAt).toISOString(), endsAt: new Date(later.endsAt).toISOString() });
    expect(await bucketSales('POSTPONE')).toEqual(asBuckets(later));
    expect((await api.request('GET', '/v1/admin/skus/POSTPONE', { token: admin })).body.flashSale.priceCents).toBe(39_900);

    const refused = await checkout('early-bird', 'POSTPONE');
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'SALE_NOT_ACTIVE', opensAt: new Date(later.startsAt).toISOString() });
    // sent again: the same answer, nothing else changed
    expect((await changeSale('POSTPONE', later)).body).toEqual(answer.body);
  });

  it('withdraws a sale before it opens: the SKU sells at once at its list price', async ({ expect }) => {
    await createSku('WITHDRAW', saleFrom(HOUR, 2 * HOUR));
    const answer = await withdrawSale('WITHDRAW');
    expect(answer.status).toBe(200);
    expect(answer.body.flashSale).toBeNull();
    expect(await bucketSales('WITHDRAW')).toEqual(asBuckets(null));
    const accepted = await checkout('shopper', 'WITHDRAW', 3);
    expect(accepted.status).toBe(202);
    expect(await persisted(accepted.body.orderId)).toEqual({ type: 'standard', payableCents: 3 * LIST_PRICE });
    expect((await withdrawSale('WITHDRAW')).status).toBe(200);
  });

  it('adds a sale to a SKU without one, which holds its units for it', async ({ expect }) => {
    await createSku('ADDED', undefined);
    const sale = saleFrom(HOUR, 2 * HOUR);
    expect((await changeSale('ADDED', sale)).status).toBe(200);
    expect(await bucketSales('ADDED')).toEqual(asBuckets(sale));
    expect((await checkout('early-bird', 'ADDED')).body).toMatchObject({ code: 'SALE_NOT_ACTIVE', opensAt: new Date(sale.startsAt).toISOString() });
  });

  it('refuses to change a sale that has opened until it has ended, naming when it opened and when it ends; the stock can still be set to 0', async ({ expect }) => {
    const running = saleFrom(-HOUR, HOUR);
    await createSku('RUNNING', running);
    for (const answer of [await changeSale('RUNNING', saleFrom(2 * HOUR, 3 * HOUR)), await withdrawSale('RUNNING')]) {
      expect(answer.status).toBe(409);
      expect(String(answer.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({ code: 'SALE_ALREADY_OPEN', opensAt: new Date(running.startsAt).toISOString(), changeableAt: new Date(running.endsAt).toISOString() });
    }
    expect(await bucketSales('RUNNING')).toEqual(asBuckets(running));
    // the same sale asked again changes nothing and is no conflict
    expect((await changeSale('RUNNING', running)).status).toBe(200);
    expect((await api.request('PUT', '/v1/admin/skus/RUNNING/stock', { token: admin, body: { stock: 0 } })).status).toBe(200);
  });

  it('leaves the catalog and every bucket ending the sale at one instant when staff end it at once', async ({ expect }) => {
    await createSku('RACED-END', saleFrom(-HOUR, 2 * HOUR));
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => endSale('RACED-END', { endsAt: new Date(Date.now() + HOUR - i * 60_000).toISOString() })));
    for (const answer of answers) expect([200, 400, 409]).toContain(answer.status);
    expect(answers.filter((answer) => answer.status === 409).every((answer) => answer.body.code === 'CONFLICT')).toBe(true);
    // an end read after an earlier one was made is later than the sale's end now: refused as such
    for (const answer of answers.filter(({ status }) => status === 400)) expect(answer.body.detail).toMatch(/endsAt must be before the sale's end/);
    const sku = (await api.request('GET', '/v1/admin/skus/RACED-END', { token: admin })).body;
    expect(await bucketSales('RACED-END')).toEqual(asBuckets(sku.flashSale));
  });

  it('refuses an end that is not earlier, comes within the cutoff or names no sale, with a problem, changing nothing', async ({ expect }) => {
    const running = saleFrom(-HOUR, HOUR);
    await createSku('KEEPS-ITS-END', running);
    await createSku('NO-SALE', undefined);
    await createSku('NOT-MINE', running, 'other-shop');
    const cases: Array<[string, unknown, number, string, RegExp]> = [
      ['KEEPS-ITS-END', { endsAt: new Date(Date.now() + 2 * HOUR).toISOString() }, 400, 'VALIDATION_FAILED', /endsAt must be before the sale's end/],
      ['KEEPS-ITS-END', { endsAt: new Date(Date.now() + 2_000).toISOString() }, 400, 'VALIDATION_FAILED', /endsAt must be more than 5 s ahead/],
      ['KEEPS-ITS-END', { endsAt: 'tomorrow' }, 400, 'VALIDATION_FAILED', /endsAt/],
      ['KEEPS-ITS-END', { endsAt: running.endsAt, extra: 1 }, 400, 'VALIDATION_FAILED', /additional/],
      ['NO-SALE', { endsAt: new Date(Date.now() + HOUR).toISOString() }, 409, 'CONFLICT', /has no flash sale to end/],
      ['NO-SUCH-SKU', { endsAt: new Date(Date.now() + HOUR).toISOString() }, 404, 'NOT_FOUND', /SKU/],
    ];
    for (const [skuId, body, status, code, detail] of cases) {
      const answer = await endSale(skuId, body);
      expect([answer.status, answer.body.code], JSON.stringify(body)).toEqual([status, code]);
      expect(answer.body.detail).toMatch(detail);
    }
    const half = { endsAt: new Date(Date.now() + HOUR / 2).toISOString() };
    expect((await endSale('NOT-MINE', half, api.token('shop', 'merchant'))).status).toBe(404);
    expect((await endSale('NOT-MINE', half, api.token('someone'))).status).toBe(403);
    expect(await bucketSales('KEEPS-ITS-END')).toEqual(asBuckets(running));
    expect(await bucketSales('NOT-MINE')).toEqual(asBuckets(running));
  });

  it('leaves the catalog and every bucket with one and the same sale when staff change it at once', async ({ expect }) => {
    await createSku('RACED', saleFrom(HOUR, 2 * HOUR));
    const bodies = Array.from({ length: 30 }, (_, i) => saleFrom((2 + i) * HOUR, (3 + i) * HOUR, 40_000 + i, i % 4));
    const answers = await Promise.all(bodies.map((body, i) => (i % 5 === 4 ? withdrawSale('RACED') : changeSale('RACED', body))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const sku = (await api.request('GET', '/v1/admin/skus/RACED', { token: admin })).body;
    expect(await bucketSales('RACED')).toEqual(asBuckets(sku.flashSale));
  });

  it('answers a merchant for its own SKUs only, a buyer not at all, and bad input with a problem', async ({ expect }) => {
    await createSku('THEIRS', saleFrom(HOUR, 2 * HOUR), 'other-shop');
    const later = saleFrom(3 * HOUR, 4 * HOUR);
    expect((await changeSale('THEIRS', later, api.token('shop', 'merchant'))).status).toBe(404);
    expect((await withdrawSale('THEIRS', api.token('shop', 'merchant'))).status).toBe(404);
    expect((await changeSale('THEIRS', later, api.token('someone'))).status).toBe(403);
    expect((await changeSale('THEIRS', later, api.token('other-shop', 'merchant'))).status).toBe(200);
    expect((await changeSale('NO-SUCH-SKU', later)).status).toBe(404);

    const cases: Array<[unknown, RegExp]> = [
      [saleFrom(-60_000, HOUR), /startsAt must be more than 5 s ahead/],
      [saleFrom(2_000, HOUR), /startsAt must be more than 5 s ahead/],
      [saleFrom(2 * HOUR, HOUR), /endsAt must be after/],
      [saleFrom(HOUR, 2 * HOUR, LIST_PRICE + 1), /above priceCents/],
      [{ ...later, priceCents: -1 }, /priceCents/],
      [{ ...later, extra: true }, /additional/],
      [{ startsAt: later.startsAt, endsAt: later.endsAt }, /priceCents/],
    ];
    for (const [body, detail] of cases) {
      const answer = await changeSale('THEIRS', body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.code).toBe('VALIDATION_FAILED');
      expect(answer.body.detail).toMatch(detail);
    }
    expect(await bucketSales('THEIRS')).toEqual(asBuckets(later));
  });

  // alone, last: the orders it leaves accepted and not in MySQL would hold up a change to any SKU whose last
  // sale ran when they were accepted
  it.sequential('replaces a sale that has ended with a new one, once the orders accepted in it are all in MySQL', async () => {
    const lastWeek = saleFrom(-2 * HOUR, -HOUR);
    await createSku('WEEKLY', lastWeek);
    // a bucket whose sale was set before the buyers' counts went with it keeps them a day past its end
    const olderBucket = `${env.config.REDIS_KEY_PREFIX}{g2}:sku:WEEKLY`;
    await env.redis.hdel(olderBucket, 'countsEndWithSale', 'countsBySale');
    const older = await changeSale('WEEKLY', saleFrom(HOUR, 2 * HOUR));
    expect(older.body).toMatchObject({ code: 'SALE_ALREADY_OPEN', changeableAt: new Date(Date.parse(lastWeek.endsAt) + 24 * HOUR).toISOString() });
    await env.redis.hset(olderBucket, 'countsEndWithSale', '1');
    // an order accepted in that sale still waits for MySQL (its persist job in the dead letters): it is priced there, by the sale the catalog has then
    const accepted = `${env.config.REDIS_KEY_PREFIX}{g0}:accepted`;
    await env.redis.zadd(accepted, String(Date.parse(lastWeek.endsAt) - 60_000), 'STUCK-ORDER');
    // one accepted before the sale opened is priced without it whatever the catalog has then: it does not hold the change up
    await env.redis.zadd(accepted, String(Date.parse(lastWeek.startsAt) - 24 * HOUR), 'OLDER-DEAD-LETTER');
    // nor does one of another SKU accepted meanwhile: its record names its lines
    const otherSku = `${env.config.REDIS_KEY_PREFIX}{g0}:order:OTHER-SKU-DEAD-LETTER`;
    await env.redis.hset(otherSku, 'u', 'someone', 's', 'reserved', 'p', JSON.stringify({ items: [{ skuId: 'KETTLE', qty: 1 }] }));
    await env.redis.zadd(accepted, String(Date.parse(lastWeek.endsAt) - 60_000), 'OTHER-SKU-DEAD-LETTER');
    const nextWeek = saleFrom(HOUR, 2 * HOUR, 45_000, 3);
    const waiting = await changeSale('WEEKLY', nextWeek);
    expect([waiting.status, waiting.body.code, waiting.headers['retry-after']]).toEqual([409, 'CONFLICT', '60']);
    expect(waiting.body.detail).toMatch(/^1 order\(s\) of SKU WEEKLY accepted while its last sale ran are not in MySQL yet/);
    await env.redis.zrem(accepted, 'STUCK-ORDER');

    expect((await changeSale('WEEKLY', nextWeek)).status).toBe(200);
    await env.redis.zrem(accepted, 'OLDER-DEAD-LETTER', 'OTHER-SKU-DEAD-LETTER');
    await env.redis.del(otherSku);
    expect(await bucketSales('WEEKLY')).toEqual(asBuckets(nextWeek));
    expect((await checkout('weekly-buyer', 'WEEKLY')).body).toMatchObject({ code: 'SALE_NOT_ACTIVE', opensAt: new Date(nextWeek.startsAt).toISOString() });
  });
});
