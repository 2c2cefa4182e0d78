import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const window = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };

describe('the admin side of pricing, and reverse flows on orders this shop did not take the money for', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('pricing_admin');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const count = async (table: 'promotions' | 'coupons' | 'members' | 'member_levels' | 'warehouse_shipping') =>
    Number((await env.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  it('lets only admins create promotions and coupons, and refuses a promotion id or coupon code that exists with 409 CONFLICT, changing nothing', async () => {
    const promotion = { promotionId: 'P-5000-500', title: '500 off 5,000', thresholdCents: 5_000, offCents: 500, ...window };
    for (const token of [api.token('ada'), api.token('shop', 'merchant')]) {
      const refused = await api.request('POST', '/v1/admin/promotions', { token, body: promotion });
      expect([refused.status, refused.body.code]).toEqual([403, 'FORBIDDEN']);
    }
    expect((await api.request('POST', '/v1/admin/promotions', { body: promotion })).status).toBe(401);
    expect(await count('promotions')).toBe(0);

    const created = await api.request('POST', '/v1/admin/promotions', { token: admin, body: promotion });
    expect([created.status, created.body]).toEqual([201, promotion]);
    const again = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { ...promotion, offCents: 900 } });
    expect([again.status, again.body.code]).toEqual([409, 'CONFLICT']);
    expect((await env.db.selectFrom('promotions').select('off_cents').execute()).map((row) => Number(row.off_cents))).toEqual([500]);

    const coupon = { code: 'TENOFF', kind: 'percent', percentOff: 10, minSpendCents: 6_000, perBuyerLimit: 1, ...window };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: coupon })).status).toBe(201);
    const twice = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { ...coupon, percentOff: 50 } });
    expect([twice.status, twice.body.code]).toEqual([409, 'CONFLICT']);
    expect((await env.db.selectFrom('coupons').select('percent_off').execute()).map((row) => row.percent_off)).toEqual([10]);
  });

  it('refuses malformed promotions and coupons with 400 VALIDATION_FAILED and creates nothing that checkout could use', async () => {
    const refusals: Array<[string, Record<string, unknown>]> = [
      ['/v1/admin/promotions', { promotionId: 'BACKWARDS', title: 'ends first', thresholdCents: 1, offCents: 1, startsAt: window.endsAt, endsAt: window.startsAt }],
      ['/v1/admin/promotions', { promotionId: 'NEG', title: 'negative', thresholdCents: 1, offCents: -1, ...window }],
      ['/v1/admin/promotions', { promotionId: 'FLOAT', title: 'cents', thresholdCents: 1, offCents: 0.5, ...window }],
      ['/v1/admin/promotions', { promotionId: 'ZERO', title: 'nothing off', thresholdCents: 1, offCents: 0, ...window }],
      ['/v1/admin/coupons', { code: 'NOPERCENT', kind: 'percent', minSpendCents: 0, perBuyerLimit: 1, ...window }],
      ['/v1/admin/coupons', { code: 'NOCENTS', kind: 'fixed', minSpendCents: 0, perBuyerLimit: 1, ...window }],
      ['/v1/admin/coupons', { code: 'TOOMUCH', kind: 'percent', percentOff: 101, minSpendCents: 0, perBuyerLimit: 1, ...window }],
      ['/v1/admin/coupons', { code: 'NOUSE', kind: 'fixed', offCents: 100, minSpendCents: 0, perBuyerLimit: 0, ...window }],
      ['/v1/admin/coupons', { code: 'PRICE', kind: 'fixed', offCents: 100, minSpendCents: 0, perBuyerLimit: 1, priceCents: 1, ...window }],
    ];
    for (const [path, body] of refusals) {
      const answer = await api.request('POST', path, { token: admin, body });
      expect([path, body, answer.status, answer.body.code]).toEqual([path, body, 400, 'VALIDATION_FAILED']);
    }
    expect([await count('promotions'), await count('coupons')]).toEqual([1, 1]);
    // a coupon that was refused does not exist for checkout either: nothing is reserved
    const checkout = await api.request('POST', '/v1/orders', {
      token: api.token('bea'),
      headers: { 'idempotency-key': 'bea-1' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress, couponCode: 'NOCENTS' },
    });
    expect([checkout.status, checkout.body.code]).toEqual([422, 'COUPON_INVALID']);
    expect((await api.request('GET', '/v1/admin/skus/KETTLE', { token: admin })).body.stock).toEqual({ available: 10, reserved: 0, sold: 0 });
    // a buyer's bad coupon is counted as such, never as an `error` that pages an operator
    const metrics = await api.request('GET', '/metrics');
    expect(metrics.body).toMatch(/checkouts_total\{[^}]*outcome="coupon_refused"[^}]*\} 1/);
    expect(metrics.body).not.toMatch(/checkouts_total\{[^}]*outcome="error"[^}]*\} [1-9]/);
  });

  it("refuses a year MySQL's DATETIME cannot hold (10000 in UTC, or 1) in a promotion, a coupon and a flash sale with 400 VALIDATION_FAILED naming the field, creating nothing; keeps 1000-01-01 to the last second of 9999", async () => {
    const before = [await count('promotions'), await count('coupons')];
    for (const [field, times] of [
      ['endsAt', { startsAt: '2020-01-01T00:00:00Z', endsAt: '9999-12-31T23:59:59-05:00' }],
      ['startsAt', { startsAt: '0001-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' }],
    ] as const) {
      const promotion = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { promotionId: `Y-${field}`, title: 'far', thresholdCents: 1, offCents: 1, ...times } });
      const coupon = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { code: `Y-${field}`, kind: 'fixed', offCents: 1, minSpendCents: 0, perBuyerLimit: 1, ...times } });
      const sku = await api.request('POST', '/v1/admin/skus', {
        token: admin,
        body: { skuId: `Y-${field}`, title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: { priceCents: 1, ...times, perUserLimit: 1 } },
      });
      for (const [answer, named] of [
        [promotion, field],
        [coupon, field],
        [sku, `flashSale.${field}`],
      ] as const) {
        expect([answer.status, answer.body.code, answer.body.detail], named).toEqual([400, 'VALIDATION_FAILED', expect.stringContaining(`${named} ${times[field]}`)]);
      }
      expect((await api.request('GET', `/v1/admin/skus/Y-${field}`, { token: admin })).status).toBe(404);
    }
    expect([await count('promotions'), await count('coupons')]).toEqual(before);

    const widest = { startsAt: '1000-01-01T00:00:00Z', endsAt: '9999-12-31T23:59:59.999Z' };
    const kept = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { code: 'WIDEST', kind: 'fixed', offCents: 1, minSpendCents: 0, perBuyerLimit: 1, ...widest } });
    expect(kept.status).toBe(201);
    // stored as sent, not as another year
    const stored = await env.db.selectFrom('coupons').select(['starts_at', 'ends_at']).where('code', '=', 'WIDEST').executeTakeFirstOrThrow();
    expect([stored.starts_at.toISOString(), stored.ends_at.toISOString()]).toEqual(['1000-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']);
  });

  it('refuses a leap second (23:59:60, which the date-time format allows and Date cannot hold) in a promotion, a coupon and a flash sale with 400 VALIDATION_FAILED, creating nothing', async () => {
    const leap = { startsAt: '2016-12-31T23:59:60Z', endsAt: '2100-01-01T00:00:00Z' };
    const before = [await count('promotions'), await count('coupons')];
    const promotion = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { promotionId: 'LEAP', title: 'leap', thresholdCents: 1, offCents: 1, ...leap } });
    const coupon = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { code: 'LEAP', kind: 'fixed', offCents: 1, minSpendCents: 0, perBuyerLimit: 1, ...leap } });
    const endsOnLeap = { startsAt: '2020-01-01T00:00:00Z', endsAt: '2016-12-31T23:59:60Z' };
    const coupon2 = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { code: 'LEAP2', kind: 'fixed', offCents: 1, minSpendCents: 0, perBuyerLimit: 1, ...endsOnLeap } });
    const sku = await api.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'LEAP-LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement', flashSale: { priceCents: 1, ...leap, perUserLimit: 1 } },
    });
    for (const answer of [promotion, coupon, coupon2, sku]) expect([answer.status, answer.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(sku.body.detail).toMatch(/flashSale\.startsAt/);

    expect([await count('promotions'), await count('coupons')]).toEqual(before);
    expect(await env.db.selectFrom('skus').select('sku_id').where('sku_id', '=', 'LEAP-LAMP').execute()).toEqual([]);
    expect((await api.request('GET', '/v1/admin/skus/LEAP-LAMP', { token: admin })).status).toBe(404);
    expect(await api.deps.inventory.getSkuStock('LEAP-LAMP')).toBeNull();
    // checkout does not know the coupon either
    const checkout = await api.request('POST', '/v1/orders', {
      token: api.token('lea'),
      headers: { 'idempotency-key': 'lea-1' },
      body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress, couponCode: 'LEAP' },
    });
    expect([checkout.status, checkout.body.code]).toEqual([422, 'COUPON_INVALID']);
  });

  it("refuses a coupon carrying the other kind's amount (a percent coupon with offCents, a fixed one with percentOff), or a fixed one taking nothing off, with 400 VALIDATION_FAILED naming the field, storing nothing", async () => {
    const before = await count('coupons');
    const couponKey = (code: string) => api.deps.inventory.keys.coupon(api.deps.inventory.keys.couponGroup(), code);
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ code: 'PCT-WITH-CENTS', kind: 'percent', percentOff: 10, offCents: 500, minSpendCents: 0, perBuyerLimit: 1, ...window }, 'offCents is for a fixed coupon: a percent coupon takes percentOff % off, no amount'],
      [{ code: 'CENTS-WITH-PCT', kind: 'fixed', offCents: 500, percentOff: 10, minSpendCents: 0, perBuyerLimit: 1, ...window }, 'percentOff is for a percent coupon: a fixed coupon takes offCents off, no percentage'],
      [{ code: 'NOTHING-OFF', kind: 'fixed', offCents: 0, minSpendCents: 0, perBuyerLimit: 1, ...window }, 'a fixed coupon takes at least 1 cent off: offCents 0 would take nothing'],
    ];
    for (const [body, detail] of refusals) {
      const answer = await api.request('POST', '/v1/admin/coupons', { token: admin, body });
      expect([answer.status, answer.body.code, answer.body.detail]).toEqual([400, 'VALIDATION_FAILED', detail]);
      expect(String(answer.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(await env.db.selectFrom('coupons').select('code').where('code', '=', String(body.code)).execute()).toEqual([]);
      expect(await env.redis.exists(couponKey(String(body.code)))).toBe(0);
    }
    expect(await count('coupons')).toBe(before);
    // offCents 0 names no amount (the shape the domain writes a percent coupon in): taken
    const zero = await api.request('POST', '/v1/admin/coupons', { token: admin, body: { code: 'PCT-ZERO-CENTS', kind: 'percent', percentOff: 10, offCents: 0, minSpendCents: 0, perBuyerLimit: 1, ...window } });
    expect(zero.status).toBe(201);
  });

  it('refuses a promotion naming a SKU twice, or SKUs that do not exist (naming them), with 400 VALIDATION_FAILED', async () => {
    const promotion = { title: '100 off', thresholdCents: 1_000, offCents: 100, ...window };
    const twice = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { ...promotion, promotionId: 'TWICE', skuIds: ['KETTLE', 'KETTLE'] } });
    expect([twice.status, twice.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    const unknown = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { ...promotion, promotionId: 'UNKNOWN', skuIds: ['KETTLE', 'NOPE', 'kettle'] } });
    expect([unknown.status, unknown.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(unknown.body.detail).toBe('skuIds name SKUs that do not exist: NOPE, kettle');
    expect(await env.db.selectFrom('promotions').select('promotion_id').where('promotion_id', 'in', ['TWICE', 'UNKNOWN']).execute()).toEqual([]);

    const known = await api.request('POST', '/v1/admin/promotions', { token: admin, body: { ...promotion, promotionId: 'KETTLES', skuIds: ['KETTLE'] } });
    expect(known.status).toBe(201);
  });

  it('sets member levels, a buyer’s level only to a level that exists, and shipping fees per warehouse', async () => {
    const unknown = await api.request('PUT', '/v1/admin/members/ada', { token: admin, body: { level: 'gold' } });
    expect([unknown.status, unknown.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(await count('members')).toBe(0);

    expect((await api.request('PUT', '/v1/admin/member-levels/gold', { token: admin, body: { discountPercent: 5, freeShipping: false } })).body).toEqual({
      level: 'gold',
      discountPercent: 5,
      freeShipping: false,
    });
    // setting it again changes it in place
    expect((await api.request('PUT', '/v1/admin/member-levels/gold', { token: admin, body: { discountPercent: 7, freeShipping: true } })).status).toBe(200);
    expect((await api.request('PUT', '/v1/admin/members/ada', { token: admin, body: { level: 'gold' } })).body).toEqual({ userId: 'ada', level: 'gold' });
    expect((await api.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin, body: { feeCents: 600 } })).body).toEqual({ warehouseId: 'wh-east', feeCents: 600 });
    expect((await api.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin, body: { feeCents: -1 } })).status).toBe(400);
    // no SKU can ship from a warehouse named . or .. (its creation refuses them), so neither has a fee to set
    for (const segment of ['%2E', '%2E%2E']) expect((await api.request('PUT', `/v1/admin/warehouses/${segment}/shipping`, { token: admin, body: { feeCents: 600 } })).status).toBe(400);
    expect((await api.request('PUT', '/v1/admin/member-levels/gold', { token: api.token('ada'), body: { discountPercent: 100, freeShipping: true } })).status).toBe(403);

    expect(await env.db.selectFrom('member_levels').selectAll().execute()).toEqual([{ level: 'gold', discount_percent: 7, free_shipping: 1 }]);
    expect(await env.db.selectFrom('members').selectAll().execute()).toEqual([{ user_id: 'ada', level: 'gold' }]);
    expect((await env.db.selectFrom('warehouse_shipping').selectAll().execute()).map((row) => [row.warehouse_id, Number(row.fee_cents)])).toEqual([['wh-east', 600]]);
  });

  it("refuses a token whose subject is a path's dot segment (. or ..): no URL could give that buyer a level at /v1/admin/members/:userId; dots within a subject are addressable", async () => {
    expect((await api.request('PUT', '/v1/admin/member-levels/dots', { token: admin, body: { discountPercent: 1, freeShipping: false } })).status).toBe(200);
    // a URL client (fetch, a browser, the console, curl) resolves the segment away before sending
    const resolvedAway = await fetch(new URL(`/v1/admin/members/${encodeURIComponent('..')}`, api.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ level: 'dots' }),
    });
    expect([resolvedAway.status, ((await resolvedAway.json()) as { detail: string }).detail]).toEqual([404, 'No route PUT /v1/admin/']);
    for (const sub of ['.', '..']) {
      const refused = await api.request('GET', '/v1/orders', { token: api.token(sub) });
      expect([sub, refused.status, refused.body.code]).toEqual([sub, 401, 'UNAUTHORIZED']);
      // sent as raw bytes, the route refuses the subject it would never see in a token
      const raw = await api.request('PUT', `/v1/admin/members/${sub}`, { token: admin, body: { level: 'dots' } });
      expect([sub, raw.status, raw.body.code]).toEqual([sub, 400, 'VALIDATION_FAILED']);
    }
    expect(await env.db.selectFrom('members').select('user_id').where('user_id', 'in', ['.', '..']).execute()).toEqual([]);

    expect((await api.request('GET', '/v1/orders', { token: api.token('...') })).status).toBe(200);
    const dotted = await fetch(new URL('/v1/admin/members/...', api.url), {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ level: 'dots' }),
    });
    expect([dotted.status, await dotted.json()]).toEqual([200, { userId: '...', level: 'dots' }]);
  });

  it('cancels an imported paid order as its table says (no refund: its channel took the money) and refuses a return of an imported delivered one', async () => {
    const partnerOrder = (externalOrderId: string, status: string) => ({
      externalOrderId,
      userId: 'tm-buyer',
      placedAt: '2026-11-11T00:00:05.000Z',
      status,
      items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900 }],
      address: buyerAddress,
    });
    const imported = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders: [partnerOrder('TM-1', 'PAID'), partnerOrder('TM-2', 'DELIVERED')] } });
    expect(imported.status).toBe(200);
    const [paid, delivered] = (imported.body.results as Array<{ orderId: string }>).map((r) => r.orderId);

    const byBuyer = await api.request('POST', `/v1/orders/${paid}/cancel`, { token: api.token('tm-buyer'), body: { reason: 'changed my mind' } });
    expect([byBuyer.status, byBuyer.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const byMerchant = await api.request('POST', `/v1/orders/${paid}/cancel`, { token: api.token('shop', 'merchant'), body: { reason: 'out of stock at the channel' } });
    expect([byMerchant.status, byMerchant.body.status, byMerchant.body.amounts.refundedCents]).toEqual([200, 'CANCELLED', 0]);
    expect(byMerchant.body.history.at(-1)).toMatchObject({ from: 'PAID', action: 'cancel', to: 'CANCELLED', actor: 'merchant' });
    expect(await env.db.selectFrom('refunds').selectAll().execute()).toEqual([]);

    const returned = await api.request('POST', `/v1/orders/${delivered}/returns`, { token: api.token('tm-buyer'), body: { reason: 'broken', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect([returned.status, returned.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect((await api.request('GET', `/v1/orders/${delivered}`, { token: admin })).body.status).toBe('DELIVERED');
  });
});
