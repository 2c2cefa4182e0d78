// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe("the answers API.md promises with a retry-after, as /docs/json lists them for a client generated from it", () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let spec: any;

  beforeAll(async () => {
    // a budget of 3 requests per minute: the fourth of a buyer's is refused
    env = await createTestEnv('openapi_answers', { RATE_LIMIT_PER_USER: '3', RATE_LIMIT_WINDOW_MS: '60000' });
    api = await startApi(env);
    spec = (await api.request('GET', '/docs/json')).body;
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it("compiles every route's request and response schemas, which the api compiles at each route's first use", async () => {
    // a schema that does not compile would otherwise be found by its route's first request (a 500)
    expect(api.app.compileEverySchema()).toBeGreaterThan(2 * Object.keys(spec.paths).length);
    expect((await api.request('GET', '/v1/orders', { token: api.token('compiled') })).status).toBe(200);
  });

  it('lists 429 RATE_LIMITED with retry-after on every route a budget applies to (all but /health/* and /metrics), and answers it as listed', async () => {
    const budgeted = Object.entries(spec.paths as Record<string, Record<string, any>>)
      .filter(([path]) => !/^\/(health\/|metrics$)/.test(path))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => [`${method} ${path}`, operation.responses?.['429']] as const));
    expect(budgeted.length).toBeGreaterThan(20);
    for (const [route, limited] of budgeted) {
      expect(limited?.description, route).toContain('RATE_LIMITED');
      expect(Object.keys(limited?.headers ?? {}), route).toEqual(expect.arrayContaining(['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']));
    }
    for (const path of ['/health/live', '/health/ready', '/metrics']) expect(spec.paths[path].get.responses['429'], path).toBeUndefined();

    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'MUG', title: 'Mug', priceCents: 899, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    for (let i = 0; i < 3; i++) await api.request('GET', '/v1/orders', { token: api.token('ann') });
    for (const [method, path, body] of [['GET', '/v1/orders'], ['POST', '/v1/orders', { items: [{ skuId: 'MUG', qty: 1 }], address: buyerAddress }]] as const) {
      const refused = await api.request(method, path, { token: api.token('ann'), headers: { 'idempotency-key': 'ann-1' }, body });
      expect([refused.status, refused.body], path).toEqual([429, { type: expect.any(String), title: expect.any(String), status: 429, detail: expect.any(String), code: 'RATE_LIMITED', instance: path }]);
      expect(Number(refused.headers['retry-after']), path).toBeGreaterThanOrEqual(1);
    }
  });

  it("lists checkout's 503 OVERLOADED with retry-after, and its 202's location (the order's statusUrl)", () => {
    const checkout = spec.paths['/v1/orders'].post.responses;
    expect(checkout['503']?.description).toContain('OVERLOADED');
    expect(Object.keys(checkout['503']?.headers ?? {})).toContain('retry-after');
    expect(Object.keys(checkout['202'].headers ?? {})).toContain('location');
  });

  it('lists idempotent-replayed on the answers of the catalog routes that take an Idempotency-Key, and the created SKU\'s location', async () => {
    expect(Object.keys(spec.paths['/v1/admin/skus'].post.responses['201'].headers ?? {}).sort()).toEqual(['idempotent-replayed', 'location']);
    expect(Object.keys(spec.paths['/v1/admin/skus/{skuId}/stock'].put.responses['200'].headers ?? {})).toEqual(['idempotent-replayed']);
    // the SKU is answered whole with them (another admin: ops spent part of its budget of 3 above)
    const admin = api.token('ops-2', 'admin');
    const sku = { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' };
    for (let i = 0; i < 2; i++) {
      const created = await api.request('POST', '/v1/admin/skus', { token: admin, headers: { 'idempotency-key': 'kettle-1' }, body: sku });
      expect([created.status, created.headers.location, created.body.stock], `create ${i}`).toEqual([201, '/v1/admin/skus/KETTLE', { available: 5, reserved: 0, sold: 0 }]);
      expect(created.headers['idempotent-replayed'], `create ${i}`).toBe(i === 0 ? undefined : 'true');
    }
  });
  it('lists every error answer as application/problem+json, the content type the api sends it with', async () => {
    const sent = await api.request('GET', '/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV', { token: api.token('cal') });
    expect([sent.status, String(sent.headers['content-type'])]).toEqual([404, 'application/problem+json; charset=utf-8']);
    const listedAs: string[] = [];
    for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(methods)) {
        for (const [status, answer] of Object.entries(operation.responses ?? {}) as Array<[string, any]>) {
          if (/^[45]/.test(status) && !Object.keys(answer.content ?? {}).includes('application/problem+json')) listedAs.push(`${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    expect(listedAs).toEqual([]);
  });

  it('lists a body that may be left out as not required, the 204 of a webhook deleted, and 201 Created on the creating routes alone', async () => {
    // confirm-receipt takes no body: an unknown order is 404, not 400
    expect((await api.request('POST', '/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV/confirm-receipt', { token: api.token('dee') })).status).toBe(404);
    expect(spec.paths['/v1/orders/{orderId}/confirm-receipt'].post.requestBody?.required).toBe(false);
    expect(spec.paths['/v1/orders'].post.requestBody?.required).toBe(true);
    const admin = api.token('hooks', 'admin');
    const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'https://hooks.example.com/orders' } });
    expect((await api.request('DELETE', `/v1/admin/webhooks/${hook.body.webhookId}`, { token: admin })).status).toBe(204);
    expect(Object.keys(spec.paths['/v1/admin/webhooks/{webhookId}'].delete.responses)).toContain('204');
    const created = Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, methods]) =>
      Object.entries(methods).flatMap(([method, operation]) => ('201' in (operation.responses ?? {}) ? [`${method.toUpperCase()} ${path}`] : [])),
    );
    expect(created.sort()).toEqual(['POST /v1/admin/coupons', 'POST /v1/admin/promotions', 'POST /v1/admin/skus', 'POST /v1/admin/webhooks']);
  });
});
