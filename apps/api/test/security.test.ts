import { createHmac } from 'node:crypto';
import { StockKeys, mastersOf } from '@orders/stock';
import { OrderRepository } from '@orders/persistence';
import { buyerAddress, createSku, createTestEnv, persistLampOrder, signToken, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectLog, startApi, type ApiUnderTest } from './support/api-under-test.js';

const partnerOrder = (externalOrderId: string, userId: string) => ({
  externalOrderId,
  userId,
  placedAt: '2026-11-11T00:00:05.000Z',
  status: 'PAID',
  items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'kettle-maker', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900 }],
  shippingCents: 0,
  address: buyerAddress,
});

describe('security: who sees what, budgets, risk control, signed callbacks, limits and headers', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  const log = collectLog();

  beforeAll(async () => {
    env = await createTestEnv('security', {
      RATE_LIMIT_PER_USER: '8',
      RATE_LIMIT_PER_IP: '4',
      RATE_LIMIT_WINDOW_MS: '60000',
      RISK_BLOCKED_USERS: 'mallory,trudy',
      RISK_BLOCKED_DEVICES: 'stolen-phone-1',
      RISK_VELOCITY_MAX_CHECKOUTS: '3',
      RISK_VELOCITY_WINDOW_MS: '60000',
      CALLBACK_REPLAY_WINDOW_MS: '60000',
      BODY_LIMIT_BYTES: '4096',
    });
    api = await startApi(env, { log });
    await createSku(api, api.token('ops-catalog', 'admin'), { skuId: 'RISKY', title: 'Risky gadget', priceCents: 1_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const checkout = (buyer: string, key: string, headers: Record<string, string> = {}) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), body: { items: [{ skuId: 'RISKY', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': key, ...headers } });
  const stockOfRisky = async (admin: string) => (await api.request('GET', '/v1/admin/skus/RISKY', { token: api.token(admin, 'admin') })).body.stock;

  describe('rate limits', () => {
    it("answers a buyer's 9th request in the window with 429 RATE_LIMITED and retry-after, while another buyer is served", async () => {
      for (let i = 1; i <= 8; i++) {
        const served = await api.request('GET', '/v1/orders', { token: api.token('busy-buyer') });
        expect(served.status).toBe(200);
        // the budget on every answer, so a client can pace itself
        expect({ limit: served.headers['x-ratelimit-limit'], remaining: served.headers['x-ratelimit-remaining'] }).toEqual({ limit: '8', remaining: String(8 - i) });
        expect(Number(served.headers['x-ratelimit-reset'])).toBeGreaterThanOrEqual(1);
      }
      const refused = await api.request('GET', '/v1/orders', { token: api.token('busy-buyer') });
      expect(refused.status).toBe(429);
      expect(refused.headers['x-ratelimit-remaining']).toBe('0');
      expect(String(refused.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(refused.body).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);

      expect((await api.request('GET', '/v1/orders', { token: api.token('calm-buyer') })).status).toBe(200);
    });

    it("keeps a merchant's budget apart from a buyer's whose id is the same", async () => {
      for (let i = 1; i <= 8; i++) expect((await api.request('GET', '/v1/orders', { token: api.token('corner-shop') })).status).toBe(200);
      expect((await api.request('GET', '/v1/orders', { token: api.token('corner-shop') })).status).toBe(429);
      expect((await api.request('GET', '/v1/orders', { token: api.token('corner-shop', 'merchant') })).status).toBe(200);
    });

    it('limits anonymous requests per IP, but a signed-in buyer behind the same IP keeps their own budget', async () => {
      for (let i = 1; i <= 4; i++) expect((await api.request('GET', '/v1/orders')).status).toBe(401);
      const refused = await api.request('GET', '/v1/orders');
      expect(refused.status).toBe(429);
      expect(refused.body.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // a forged token is anonymous too: it cannot open a budget of its own
      const forged = signToken('some-other-secret-of-32-chars!!', { sub: 'anyone', role: 'buyer' });
      expect((await api.request('GET', '/v1/orders', { token: forged })).status).toBe(429);
      // unknown paths are limited as well, so ids cannot be probed
      expect((await api.request('GET', '/v1/no-such-thing')).status).toBe(429);
      // and the API docs, refused as problem details like any route
      const docs = await api.request('GET', '/docs/json');
      expect([docs.status, String(docs.headers['content-type']).split(';')[0], docs.body.code]).toEqual([429, 'application/problem+json', 'RATE_LIMITED']);
      expect(Number(docs.headers['retry-after'])).toBeGreaterThanOrEqual(1);

      expect((await api.request('GET', '/v1/orders', { token: api.token('buyer-behind-the-same-nat') })).status).toBe(200);
      // probes and scrapes are never limited
      expect((await api.request('GET', '/health/live')).status).toBe(200);
      // a callback the payment system signed spends no budget; one not signed spends the IP's, as any anonymous request
      const payment = JSON.stringify({ orderId: '01JAAAAAAAAAAAAAAAAAAAAAAA', paymentId: 'pay-1', transactionId: 'tx-1', status: 'SUCCEEDED', amountCents: 100, at: new Date().toISOString() });
      const signature = `sha256=${createHmac('sha256', env.config.PAYMENT_CALLBACK_SECRET).update(payment).digest('hex')}`;
      expect((await api.request('POST', '/v1/callbacks/payment', { body: payment, headers: { 'x-signature': signature } })).status).toBe(404);
      const unsigned = await api.request('POST', '/v1/callbacks/payment', { body: payment, headers: { 'x-signature': 'sha256=00' } });
      expect([unsigned.status, unsigned.body.code, unsigned.headers['x-ratelimit-remaining']]).toEqual([429, 'RATE_LIMITED', '0']);
      // with no proxy trusted (the default), a client cannot name its own address
      expect((await api.request('GET', '/v1/orders', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(429);
    });

    it('behind a trusted load balancer, counts each client address it forwards on its own budget', async () => {
      const behindBalancer = await startApi({ ...env, config: { ...env.config, TRUST_PROXY: ['127.0.0.1'] } });
      try {
        const from = (ip: string) => behindBalancer.request('GET', '/v1/orders', { headers: { 'x-forwarded-for': ip } });
        for (let i = 1; i <= 4; i++) expect((await from('198.51.100.7')).status).toBe(401);
        expect((await from('198.51.100.7')).status).toBe(429);
        expect((await from('198.51.100.8')).status).toBe(401);
        // an IPv6 client holds a whole /64: its addresses share one budget, another network's is its own
        for (let i = 1; i <= 4; i++) expect((await from(`2001:db8:7:1::${i}`)).status).toBe(401);
        expect((await from('2001:db8:7:1:ffff:1:2:3')).status).toBe(429);
        expect((await from('2001:db8:7:2::1')).status).toBe(401);
      } finally {
        await behindBalancer.close();
      }
    });

    it("spends a buyer's budget on every checkout answer, the reservation's and the ones before it, and then refuses checkouts with 429, reserving nothing", async () => {
      // velocity off, so the budget is what refuses; a sold-out SKU is remembered for the whole test
      const shop = await startApi({ ...env, config: { ...env.config, RISK_VELOCITY_MAX_CHECKOUTS: 0, SOLD_OUT_MEMORY_MS: 60_000 } });
      try {
        const admin = shop.token('ops-budget', 'admin');
        await createSku(shop, admin, { skuId: 'SCARCE', title: 'Scarce lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 2, deduction: 'placement' });
        await createSku(shop, admin, { skuId: 'SPLIT', title: 'Hot phone', priceCents: 9_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 8, deduction: 'placement', stockBuckets: 4 });
        const token = shop.token('thrifty-buyer');
        // SPLIT's reservation runs in the buyer's bucket, {g3}, away from their counters in {g0}
        expect(new StockKeys('').bucketOf('thrifty-buyer', 4)).toBe(3);
        const checkoutOf = (key: string, items: unknown, headers: Record<string, string> = {}) =>
          shop.request('POST', '/v1/orders', { token, body: { items, address: buyerAddress }, headers: { 'idempotency-key': key, ...headers } });
        const scarce = [{ skuId: 'SCARCE', qty: 1 }];
        const answers = [
          await checkoutOf('k-1', scarce),
          await checkoutOf('k-2', scarce),
          // the script finds it empty, then the api's memory answers
          await checkoutOf('k-3', scarce),
          await checkoutOf('k-4', scarce),
          await checkoutOf('k-malformed', [{ skuId: 'SCARCE', qty: 0 }]),
          await checkoutOf('k-1', scarce),
          // a SKU split into buckets: its counters are counted before its reservation
          await checkoutOf('k-split', [{ skuId: 'SPLIT', qty: 1 }]),
          await checkoutOf('k-device', scarce, { 'x-device-id': 'stolen-phone-1' }),
        ];
        expect(answers.map((answer) => answer.status)).toEqual([202, 202, 409, 409, 400, 202, 202, 403]);
        expect(answers[5]!.body.orderId).toBe(answers[0]!.body.orderId);
        expect(answers.map((answer) => [answer.headers['x-ratelimit-limit'], answer.headers['x-ratelimit-remaining']])).toEqual(
          answers.map((_, i) => ['8', String(7 - i)]),
        );

        const refused = [await checkoutOf('k-late', [{ skuId: 'SPLIT', qty: 1 }]), await checkoutOf('k-1', scarce), await checkoutOf('k-malformed', [{ skuId: 'SCARCE', qty: 0 }]), await checkoutOf('k-4', scarce)];
        for (const answer of refused) {
          expect(answer.status).toBe(429);
          expect(String(answer.headers['content-type'])).toMatch(/^application\/problem\+json/);
          expect(answer.body).toMatchObject({ status: 429, code: 'RATE_LIMITED', instance: '/v1/orders' });
          expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
          expect(answer.headers['x-ratelimit-remaining']).toBe('0');
        }
        // the three that reached the checkout are counted as its answers (the malformed one is no checkout, as within budget)
        const metrics = await shop.request('GET', '/metrics');
        expect(metrics.body).toMatch(/^checkouts_total\{[^}]*outcome="rate_limited"[^}]*\} 3$/m);
        const stockOf = async (skuId: string) => (await shop.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.stock;
        expect(await stockOf('SCARCE')).toEqual({ available: 0, reserved: 2, sold: 0 });
        expect(await stockOf('SPLIT')).toEqual({ available: 7, reserved: 1, sold: 0 });
      } finally {
        await shop.close();
      }
    });

    it('serves a refused buyer again once the window has passed, and leaves no budget in Redis without an expiry', async () => {
      const shortWindow = await startApi({ ...env, config: { ...env.config, RATE_LIMIT_WINDOW_MS: 2_000 } });
      try {
        const orders = () => shortWindow.request('GET', '/v1/orders', { token: shortWindow.token('patient-buyer') });
        // sent together, so a slow box cannot spread them over two windows
        const answers = await Promise.all(Array.from({ length: 9 }, orders));
        expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 429]);
        const refused = answers.find((answer) => answer.status === 429)!;
        await new Promise((resolve) => setTimeout(resolve, Number(refused.headers['retry-after']) * 1_000 + 100));
        expect((await orders()).status).toBe(200);
      } finally {
        await shortWindow.close();
      }

      const budgets: string[] = [];
      for (const node of mastersOf(env.redis)) budgets.push(...(await node.keys(`${env.config.REDIS_KEY_PREFIX}*:rate:*`)));
      expect(budgets.length).toBeGreaterThan(0);
      // -1: kept for ever; -2: expired since it was listed (the patient buyer's 2 s window may have), as it should
      for (const budget of budgets) expect(await env.redis.pttl(budget), budget).not.toBe(-1);
    });
  });

  describe('risk control on checkout', () => {
    it('refuses a blocked buyer, a blocked device and a buyer past the velocity rule with 403 RISK_REJECTED, reserving nothing', async () => {
      const before = await stockOfRisky('ops-risk-1');
      const acceptedKey = `${env.config.REDIS_KEY_PREFIX}{g0}:accepted`;
      const acceptedBefore = await env.redis.zcard(acceptedKey);

      const blockedBuyer = await checkout('mallory', 'k-mallory');
      expect(blockedBuyer.status).toBe(403);
      expect(blockedBuyer.body).toMatchObject({ status: 403, code: 'RISK_REJECTED' });

      const blockedDevice = await checkout('honest-buyer', 'k-device', { 'x-device-id': 'stolen-phone-1' });
      expect(blockedDevice.status).toBe(403);
      expect(blockedDevice.body.code).toBe('RISK_REJECTED');
      expect((await checkout('honest-buyer', 'k-own-device', { 'x-device-id': 'own-phone-7' })).status).toBe(202);

      // 3 checkouts a minute are allowed; the 4th in the window is refused
      const accepted = [];
      for (let i = 1; i <= 3; i++) accepted.push(await checkout('eager-buyer', `k-eager-${i}`));
      expect(accepted.map((answer) => answer.status)).toEqual([202, 202, 202]);
      const tooFast = await checkout('eager-buyer', 'k-eager-4');
      expect(tooFast.status).toBe(403);
      expect(tooFast.body.code).toBe('RISK_REJECTED');
      // a retry of an accepted checkout (its 202 lost) is no new attempt: its order again, not a refusal that hides it
      const retried = await checkout('eager-buyer', 'k-eager-1');
      expect([retried.status, retried.body.orderId]).toEqual([202, accepted[0]!.body.orderId]);

      // only the 4 accepted checkouts hold stock
      expect(await stockOfRisky('ops-risk-2')).toEqual({ available: before.available - 4, reserved: before.reserved + 4, sold: 0 });
      expect(await env.redis.zcard(acceptedKey)).toBe(acceptedBefore + 4);
    });

    it('applies the velocity rule to a SKU split into buckets too, whose counters are counted before its reservation', async () => {
      const admin = api.token('ops-risk-split', 'admin');
      await createSku(api, admin, { skuId: 'RISKY-SPLIT', title: 'Risky split gadget', priceCents: 2_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement', stockBuckets: 2 });
      // a buyer of bucket 1, whose reservation runs in {g1}, away from their counters in {g0}
      const buyer = 'split-buyer';
      expect(new StockKeys('').bucketOf(buyer, 2)).toBe(1);
      const checkoutSplit = (key: string) =>
        api.request('POST', '/v1/orders', { token: api.token(buyer), body: { items: [{ skuId: 'RISKY-SPLIT', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': key } });
      const accepted = [];
      for (let i = 1; i <= 3; i++) accepted.push(await checkoutSplit(`k-split-${i}`));
      expect(accepted.map((answer) => answer.status)).toEqual([202, 202, 202]);
      const tooFast = await checkoutSplit('k-split-4');
      expect(tooFast.status).toBe(403);
      expect(tooFast.body.code).toBe('RISK_REJECTED');
      expect(tooFast.headers['x-ratelimit-remaining']).toBe('4');
      const retried = await checkoutSplit('k-split-2');
      expect([retried.status, retried.body.orderId]).toEqual([202, accepted[1]!.body.orderId]);
      expect((await api.request('GET', '/v1/admin/skus/RISKY-SPLIT', { token: admin })).body.stock).toEqual({ available: 7, reserved: 3, sold: 0 });
    });

    it("counts the checkouts the api refuses from its sold-out memory as attempts, a retried one's too, and refuses the one past the velocity rule, but not a retry of the accepted one", async () => {
      const shop = await startApi({ ...env, config: { ...env.config, SOLD_OUT_MEMORY_MS: 60_000 } });
      try {
        const admin = shop.token('ops-risk-memory', 'admin');
        await createSku(shop, admin, { skuId: 'RISKY-LAST', title: 'Last risky gadget', priceCents: 1_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 1, deduction: 'placement' });
        const checkoutLast = (key: string) =>
          shop.request('POST', '/v1/orders', { token: shop.token('keen-buyer'), body: { items: [{ skuId: 'RISKY-LAST', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': key } });
        // the last unit; then the script finds the SKU empty; then the api's memory answers, the 4th and 5th attempts in the window
        // included: the 4th retries the accepted checkout (counted, and answered with its order), the 5th is refused
        const answers = [await checkoutLast('k-keen-1'), await checkoutLast('k-keen-2'), await checkoutLast('k-keen-3'), await checkoutLast('k-keen-1'), await checkoutLast('k-keen-4')];
        expect(answers.map((answer) => answer.status)).toEqual([202, 409, 409, 202, 403]);
        expect(answers[3]!.body.orderId).toBe(answers[0]!.body.orderId);
        expect(answers[4]!.body).toMatchObject({ status: 403, code: 'RISK_REJECTED' });
        expect(answers.map((answer) => answer.headers['x-ratelimit-remaining'])).toEqual(['7', '6', '5', '4', '3']);
        expect((await shop.request('GET', '/v1/admin/skus/RISKY-LAST', { token: admin })).body.stock).toEqual({ available: 0, reserved: 1, sold: 0 });
      } finally {
        await shop.close();
      }
    });

    it('counts a blocked buyer\'s checkouts by their answers: risk_rejected while within the budget, rate_limited once answered 429', async () => {
      // an api of its own, so its checkouts_total holds this buyer's answers alone
      const shop = await startApi(env);
      try {
        const checkoutBlocked = (key: string) =>
          shop.request('POST', '/v1/orders', { token: shop.token('trudy'), body: { items: [{ skuId: 'RISKY', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': key } });
        const answers = [];
        for (let i = 1; i <= 10; i++) answers.push(await checkoutBlocked(`k-trudy-${i}`));
        expect(answers.map((answer) => answer.body.code)).toEqual([...Array<string>(8).fill('RISK_REJECTED'), 'RATE_LIMITED', 'RATE_LIMITED']);
        const metrics = (await shop.request('GET', '/metrics')).body as string;
        expect(metrics).toMatch(/^checkouts_total\{[^}]*outcome="risk_rejected"[^}]*\} 8$/m);
        expect(metrics).toMatch(/^checkouts_total\{[^}]*outcome="rate_limited"[^}]*\} 2$/m);
      } finally {
        await shop.close();
      }
    });

    it('answers a malformed device id with 400, reserving nothing', async () => {
      const answer = await checkout('careful-buyer', 'k-bad-device', { 'x-device-id': 'has spaces in it' });
      expect(answer.status).toBe(400);
      expect(answer.body.code).toBe('VALIDATION_FAILED');
    });

    it("counts no checkout attempt of a buyer for a merchant's or an admin's checkouts refused 403 under the same id, which spend their own budget", async () => {
      for (const role of ['merchant', 'admin'] as const) {
        for (let i = 1; i <= 4; i++) {
          const refused = await api.request('POST', '/v1/orders', { token: api.token('corner-deli', role), body: { items: [{ skuId: 'RISKY', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': `k-deli-${role}-${i}` } });
          expect([refused.status, refused.body.code, refused.headers['x-ratelimit-remaining']], `${role} ${i}`).toEqual([403, 'FORBIDDEN', String(8 - i)]);
        }
      }
      // the buyer corner-deli has made no checkout in this window: theirs is their first attempt
      const own = await checkout('corner-deli', 'k-deli-buyer');
      expect([own.status, own.body.code, own.headers['x-ratelimit-remaining']]).toEqual([202, undefined, '7']);
    });
  });

  describe('who sees which order', () => {
    let orderId: string;

    beforeAll(async () => {
      const imported = await api.request('POST', '/v1/admin/orders/import', { token: api.token('ops-import', 'admin'), body: { channel: 'tmall', orders: [partnerOrder('TM-1', 'alice')] } });
      expect(imported.status).toBe(200);
      orderId = imported.body.results[0].orderId;
    });

    it('shows a buyer their own order and answers 404 to another buyer', async () => {
      expect((await api.request('GET', `/v1/orders/${orderId}`, { token: api.token('alice') })).body).toMatchObject({ orderId, userId: 'alice' });
      const probed = await api.request('GET', `/v1/orders/${orderId}`, { token: api.token('bob') });
      expect(probed.status).toBe(404);
      expect(probed.body.code).toBe('NOT_FOUND');
      expect((await api.request('GET', '/v1/orders', { token: api.token('bob') })).body.items).toEqual([]);
    });

    it('shows a merchant the orders holding its SKUs and no others', async () => {
      expect((await api.request('GET', `/v1/orders/${orderId}`, { token: api.token('kettle-maker', 'merchant') })).status).toBe(200);
      expect((await api.request('GET', `/v1/orders/${orderId}`, { token: api.token('mug-maker', 'merchant') })).status).toBe(404);
      expect((await api.request('GET', '/v1/orders', { token: api.token('mug-maker', 'merchant') })).body.items).toEqual([]);
    });

    it('keeps admin endpoints for the admin role', async () => {
      for (const [sub, role] of [['alice', 'buyer'], ['kettle-maker', 'merchant']] as const) {
        const refused = await api.request('GET', '/v1/admin/orders', { token: api.token(sub, role) });
        expect(refused.status).toBe(403);
        expect(refused.body.code).toBe('FORBIDDEN');
      }
      expect((await api.request('POST', '/v1/admin/orders/import', { token: api.token('alice'), body: { channel: 'tmall', orders: [partnerOrder('TM-2', 'alice')] } })).status).toBe(403);
      expect((await api.request('GET', '/v1/admin/orders', { token: api.token('ops-search', 'admin') })).status).toBe(200);
    });
  });

  describe('signed callbacks', () => {
    const signed = (body: object) => {
      const raw = JSON.stringify(body);
      const signature = `sha256=${createHmac('sha256', env.config.PAYMENT_CALLBACK_SECRET).update(raw).digest('hex')}`;
      return api.request('POST', '/v1/callbacks/payment', { body: raw, headers: { 'x-signature': signature } });
    };
    const callback = (at: string) => ({ orderId: '01JAAAAAAAAAAAAAAAAAAAAAAA', paymentId: 'pay-1', transactionId: 'tx-1', status: 'SUCCEEDED', amountCents: 100, at });

    it("answers 404 to a signed callback naming what MySQL has no record of, and says so with what the payment system moved, counted per what it names", async () => {
      const [orderId] = [...(await persistLampOrder(new OrderRepository(env.db), '01JUNKNOWNPAY', 1)).keys()];
      const unknown = [
        { orderId: '01JBBBBBBBBBBBBBBBBBBBBBBB', paymentId: 'pay-lost-1', transactionId: 'tx-lost-1', status: 'SUCCEEDED', amountCents: 2_500, at: new Date().toISOString() },
        { orderId, paymentId: 'pay-lost-2', transactionId: 'tx-lost-2', status: 'SUCCEEDED', amountCents: 2_500, at: new Date().toISOString() },
        { orderId, paymentId: 'pay-lost-2', refundId: 'ref-lost-3', transactionId: 'tx-lost-3', status: 'SUCCEEDED', amountCents: 500, at: new Date().toISOString() },
      ];
      const answers = [];
      for (const body of unknown) answers.push((await signed(body)).body);
      expect(answers.map((answer) => [answer.status, answer.code])).toEqual([[404, 'NOT_FOUND'], [404, 'NOT_FOUND'], [404, 'NOT_FOUND']]);
      const said = log.lines.filter((line) => String(line.msg).startsWith("a payment callback signed with this shop's secret names") && String(line.transactionId).startsWith('tx-lost-'));
      expect(said.map((line) => [line.level, line.about, line.orderId, line.transactionId, line.amountCents])).toEqual([
        [50, 'order', unknown[0]!.orderId, 'tx-lost-1', 2_500],
        [50, 'payment', orderId, 'tx-lost-2', 2_500],
        [50, 'refund', orderId, 'tx-lost-3', 500],
      ]);
      const metrics = (await api.request('GET', '/metrics')).body as string;
      for (const about of ['order', 'payment', 'refund']) expect(metrics).toMatch(new RegExp(`payment_callbacks_unknown_total\\{about="${about}",app="api"\\} [1-9]`));
    });

    it('takes a validly signed callback of any age (its at is when the payment happened), and refuses one dated further ahead than CALLBACK_REPLAY_WINDOW_MS or at a time it cannot keep', async () => {
      // through to the order lookup: delivered late, after an outage, it is still applied
      for (const agoMs of [10_000, 2 * 60_000, 24 * 3_600_000]) expect((await signed(callback(new Date(Date.now() - agoMs).toISOString()))).status, `${agoMs} ms old`).toBe(404);
      expect((await signed(callback(new Date(Date.now() + 10_000).toISOString()))).status).toBe(404);
      const ahead = await signed(callback(new Date(Date.now() + 2 * 60_000).toISOString()));
      expect([ahead.status, ahead.body.code]).toEqual([400, 'VALIDATION_FAILED']);
      expect(ahead.body.detail).toMatch(/^at .* ms ahead of the order system's clock, more than the 60000 ms allowed$/);
      // valid RFC 3339, yet no time MySQL keeps: problem details, never a 500
      for (const at of ['2026-12-31T23:59:60Z', '0999-01-01T00:00:00Z']) {
        const unkept = await signed(callback(at));
        expect([unkept.status, unkept.body.code], at).toEqual([400, 'VALIDATION_FAILED']);
        expect(unkept.body.detail, at).toMatch(/^at .* is not a time the shop can keep/);
      }
    });

    it('refuses an amountCents past the integers JSON keeps exactly (2^53) with 400, never a 500 or an amount rounded to another', async () => {
      const sent = (raw: string) =>
        api.request('POST', '/v1/callbacks/payment', { body: raw, headers: { 'x-signature': `sha256=${createHmac('sha256', env.config.PAYMENT_CALLBACK_SECRET).update(raw).digest('hex')}` } });
      const at = new Date().toISOString();
      for (const amount of ['1e20', '9007199254740993']) {
        const answer = await sent(JSON.stringify(callback(at)).replace('"amountCents":100', `"amountCents":${amount}`));
        expect([amount, answer.status, answer.body.code]).toEqual([amount, 400, 'VALIDATION_FAILED']);
      }
      // the largest exact one is an amount like any other: through to the order lookup
      expect((await sent(JSON.stringify({ ...callback(at), amountCents: Number.MAX_SAFE_INTEGER }))).status).toBe(404);
    });
  });

  describe('request limits and headers', () => {
    it('answers a body over BODY_LIMIT_BYTES with 413 problem details, on checkout and on callbacks', async () => {
      const big = JSON.stringify({ items: [{ skuId: 'RISKY', qty: 1 }], address: { ...buyerAddress, line1: 'x'.repeat(5_000) } });
      const checkoutAnswer = await api.request('POST', '/v1/orders', { token: api.token('verbose-buyer'), body: big, headers: { 'idempotency-key': 'k-big' } });
      expect(checkoutAnswer.status).toBe(413);
      expect(String(checkoutAnswer.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(checkoutAnswer.body).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE' });
      const callbackAnswer = await api.request('POST', '/v1/callbacks/warehouse', { body: JSON.stringify({ orderId: 'x', event: 'PICKED', at: new Date().toISOString(), trackingNo: 'y'.repeat(5_000) }) });
      expect(callbackAnswer.status).toBe(413);
      expect(callbackAnswer.body.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it("sends OWASP's REST security headers on answers, problems and 404s", async () => {
      const answers = [
        await api.request('GET', '/health/live'),
        await api.request('GET', '/v1/orders/nope', { token: api.token('header-buyer') }),
        await api.request('GET', '/v1/no-such-route', { token: api.token('header-buyer') }),
      ];
      expect(answers.map((answer) => answer.status)).toEqual([200, 404, 404]);
      for (const answer of answers) {
        expect(answer.headers['x-content-type-options']).toBe('nosniff');
        expect(answer.headers['x-frame-options']).toBe('DENY');
        expect(answer.headers['strict-transport-security']).toMatch(/max-age=\d+/);
        expect(answer.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
        expect(answer.headers['cache-control']).toBe('no-store');
        expect(answer.headers['x-powered-by']).toBeUndefined();
      }
    });

    it("names a request in its log lines by the caller's x-request-id only when that is 1–128 letters, digits or . _ : -, else by an id of its own", async () => {
      const reqIdOf = async (probe: string, requestId?: string) => {
        const url = `/health/live?probe=${probe}`;
        const answer = await api.request('GET', url, { headers: requestId === undefined ? {} : { 'x-request-id': requestId } });
        expect(answer.status, probe).toBe(200);
        return log.lines.find((line) => line.req?.url === url)?.reqId;
      };
      expect(await reqIdOf('traced', 'checkout-7f3a:retry.2_B')).toBe('checkout-7f3a:retry.2_B');
      expect(await reqIdOf('longest', 'a'.repeat(128))).toBe('a'.repeat(128));

      const refused = { 'too-long': 'b'.repeat(129), kilobytes: 'c'.repeat(8_000), spaces: 'order 42 please', forged: '{"level":60,"msg":"forged"}' };
      const own = [await reqIdOf('no-header')];
      for (const [probe, requestId] of Object.entries(refused)) own.push(await reqIdOf(probe, requestId));
      for (const id of own) expect(id).toMatch(/^req-[0-9a-z]+$/);
      expect(new Set(own).size).toBe(own.length);
      const written = JSON.stringify(log.lines);
      for (const requestId of Object.values(refused)) expect(written).not.toContain(JSON.stringify(requestId).slice(1, -1));
    });

    it("sends helmet's headers on the pages of the console and the API docs, which may load their own scripts", async () => {
      for (const path of ['/console', '/console/orders/x', '/docs/static/index.html']) {
        // a token's budget: this file's earlier tests spent the address's
        const answer = await api.request('GET', path, { token: api.token('page-reader') });
        expect(answer.status, path).not.toBe(429);
        expect(answer.headers['content-security-policy'], path).toMatch(/default-src 'self'/);
        expect(answer.headers['x-frame-options'], path).toBe('SAMEORIGIN');
        expect(answer.headers['x-content-type-options'], path).toBe('nosniff');
        expect(answer.headers['cache-control'], path).not.toBe('no-store');
      }
    });
  });
});
