import { createHmac } from 'node:crypto';
import { buyerAddress, createSku, createTestEnv, signToken, type TestEnv } from '@orders/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface Route {
  method: Method;
  path: string;
}

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7E]{0,${max}}$`));
const validCheckout = { items: [{ skuId: 'FUZZ', qty: 1 }], address: buyerAddress };

describe('fuzzing every route with arbitrary paths, headers and bodies', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let routes: Route[];
  const seen = { requests: 0, byStatus: new Map<number, number>() };

  beforeAll(async () => {
    // budgets out of the way: this is about what a request can do, not how many
    env = await createTestEnv('fuzz', { RATE_LIMIT_PER_USER: '1000000', RATE_LIMIT_PER_IP: '1000000', LOG_LEVEL: 'silent' });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'FUZZ', title: 'Fuzz', priceCents: 500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 100, deduction: 'placement' });
    // every route the api documents, including ones added after this test was written
    const spec = api.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
        .map((method) => ({ method: method.toUpperCase() as Method, path })),
    );
    expect(routes.length).toBeGreaterThan(15);
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const secret = () => env.config.AUTH_JWT_SECRET;
  const tokenArb = fc.oneof(
    fc.constant(undefined),
    printable(60),
    fc.tuple(fc.constantFrom('buyer', 'merchant', 'admin', 'root', ''), fc.oneof(fc.constantFrom('alice', 'shop', 'ops'), printable(70))).map(([role, sub]) => signToken(secret(), { sub, role })),
    fc.constantFrom('buyer', 'merchant', 'admin').map((role) => signToken('another-secret-that-is-long-enough', { sub: 'alice', role })),
  );
  const segmentArb = fc.oneof(fc.constantFrom('FUZZ', '01JAAAAAAAAAAAAAAAAAAAAAAA', '..', '%', '', 'null'), printable(40), fc.string({ maxLength: 20, unit: 'binary' }));
  const bodyArb = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
    fc.string({ maxLength: 200, unit: 'binary' }),
    // a valid checkout with one thing wrong
    fc.oneof(
      fc.record({ key: printable(12).filter((key) => !['items', 'address', 'couponCode', 'orderType'].includes(key)), value: fc.jsonValue({ maxDepth: 2 }) }).map(({ key, value }) => ({ ...validCheckout, [key]: value })),
      fc.jsonValue({ maxDepth: 2 }).filter((qty) => !(Number.isInteger(qty) && (qty as number) > 0)).map((qty) => ({ ...validCheckout, items: [{ skuId: 'FUZZ', qty }] })),
      fc.jsonValue({ maxDepth: 2 }).map((address) => ({ ...validCheckout, address })),
    ).map((body) => JSON.stringify(body)),
  );
  const headersArb = fc.dictionary(fc.constantFrom('idempotency-key', 'x-device-id', 'x-signature', 'x-request-id', 'content-type', 'accept', 'x-forwarded-for', 'origin'), printable(300), { maxKeys: 5 });

  async function send(method: string, url: string, headers: Record<string, string>, body: string | undefined) {
    const answer = await api.app.inject({ method: method as Method, url, headers, ...(body !== undefined ? { payload: body } : {}) });
    seen.requests++;
    seen.byStatus.set(answer.statusCode, (seen.byStatus.get(answer.statusCode) ?? 0) + 1);
    return answer;
  }

  function expectNoServerError(answer: { statusCode: number; body: string; headers: Record<string, unknown> }, what: string) {
    if (answer.statusCode >= 500) throw new Error(`${what} answered ${answer.statusCode}: ${answer.body.slice(0, 500)}`);
    if (answer.statusCode >= 400 && !String(answer.headers['content-type']).startsWith('application/problem+json') && !what.includes('/docs')) {
      throw new Error(`${what} answered ${answer.statusCode} without problem details: ${answer.body.slice(0, 200)}`);
    }
  }

  it('answers any request to any route without a server error, and every refusal as problem details', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.array(segmentArb, { minLength: 1, maxLength: 3 }), printable(30), tokenArb, headersArb, bodyArb, fc.constantFrom<Method>('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), async (pick, segments, query, token, headers, body, otherMethod) => {
        const route = routes[pick % routes.length]!;
        let i = 0;
        const path = route.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(segments[i++ % segments.length]!));
        const method = pick % 7 === 0 ? otherMethod : route.method;
        const url = `${path}${query ? `?${encodeURIComponent(query).replace(/%3D/g, '=').replace(/%26/g, '&')}` : ''}`;
        const answer = await send(method, url, { 'content-type': 'application/json', ...headers, ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) }, method === 'GET' ? undefined : body);
        expectNoServerError(answer, `${method} ${url}`);
      }),
      { numRuns: 2_500 },
    );
  }, 120_000);

  it('refuses every malformed checkout of a signed-in buyer with a 4xx', async () => {
    const buyer = api.token('fuzzy-buyer');
    await fc.assert(
      fc.asyncProperty(bodyArb.filter((body) => body !== undefined), headersArb, async (body, headers) => {
        const answer = await send('POST', '/v1/orders', { 'content-type': 'application/json', 'idempotency-key': 'fuzz', ...headers, authorization: `Bearer ${buyer}` }, body);
        expectNoServerError(answer, 'POST /v1/orders');
        expect(answer.statusCode).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 1_500 },
    );
  }, 120_000);

  it('refuses every callback that is unsigned, wrongly signed or malformed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('payment', 'warehouse'), bodyArb, fc.boolean(), printable(80), async (system, body, signIt, signature) => {
        const raw = body ?? '';
        const secretOf = system === 'payment' ? env.config.PAYMENT_CALLBACK_SECRET : env.config.WAREHOUSE_CALLBACK_SECRET;
        const header = signIt ? `sha256=${createHmac('sha256', secretOf).update(raw).digest('hex')}` : signature;
        const answer = await send('POST', `/v1/callbacks/${system}`, { 'content-type': 'application/json', 'x-signature': header }, raw);
        expectNoServerError(answer, `POST /v1/callbacks/${system}`);
        expect(answer.statusCode).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 1_000 },
    );
  }, 120_000);

  it('left no reservation, no order and no stock movement behind', async () => {
    expect(seen.requests).toBeGreaterThanOrEqual(5_000);
    expect((await api.request('GET', '/v1/admin/skus/FUZZ', { token: api.token('ops', 'admin') })).body.stock).toEqual({ available: 100, reserved: 0, sold: 0 });
    expect(await env.redis.zcard(`${env.config.REDIS_KEY_PREFIX}{g0}:accepted`)).toBe(0);
    const count = async (table: string) => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql.table(table)}`.execute(env.db)).rows[0]!.n);
    expect(await count('orders')).toBe(0);
    expect(await count('stock_ledger')).toBe(1);
    expect(await api.deps.queues.orders.count()).toBe(0);
  });
});
