import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { buyerAddress, createSku, createTestEnv, ledgerAvailable, signToken, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('bad input never reserves stock and never answers 500', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let buyer: string;

  beforeAll(async () => {
    env = await createTestEnv('bad_input', { BODY_LIMIT_BYTES: '4096', MAX_LINE_QTY: '999' });
    api = await startApi(env);
    buyer = api.token('buyer-1');
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'MUG', title: 'Mug', priceCents: 899, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    await createSku(api, admin, { skuId: 'PRE-LAMP', title: 'Lamp (presale)', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 5, deduction: 'placement', orderType: 'presale' });
    await createSku(api, admin, { skuId: 'E-VOUCHER', title: 'Voucher', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'digital', stock: 5, deduction: 'placement', orderType: 'virtual' });
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const valid = { items: [{ skuId: 'MUG', qty: 1 }], address: buyerAddress };
  const signToken512 = (secret: string, claims: { sub: string; role: string }) => {
    const unsigned = [{ alg: 'HS512', typ: 'JWT' }, { exp: Math.floor(Date.now() / 1000) + 3600, ...claims }].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.');
    return `${unsigned}.${createHmac('sha512', secret).update(unsigned).digest('base64url')}`;
  };
  const withClaims = (token: string, claims: Record<string, unknown>) => {
    const [header, payload, signature] = token.split('.');
    const forged = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), ...claims };
    return `${header}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`;
  };

  const cases: Array<[string, { body?: unknown; token?: () => string | undefined; authorization?: () => string; key?: string | null; raw?: string }, number, string]> = [
    ['a missing address', { body: { items: valid.items } }, 400, 'VALIDATION_FAILED'],
    // only a cart of virtual SKUs alone ships nothing, and is bought without one
    ['a missing address for a presale cart', { body: { items: [{ skuId: 'PRE-LAMP', qty: 1 }] } }, 400, 'VALIDATION_FAILED'],
    ['a missing address for a standard cart asked to make a virtual order', { body: { items: valid.items, orderType: 'virtual' } }, 400, 'VALIDATION_FAILED'],
    ['no items', { body: { items: [], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a quantity as a string', { body: { items: [{ skuId: 'MUG', qty: '1' }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a negative quantity', { body: { items: [{ skuId: 'MUG', qty: -1 }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a zero quantity', { body: { items: [{ skuId: 'MUG', qty: 0 }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a huge quantity', { body: { items: [{ skuId: 'MUG', qty: 1e12 }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a fractional quantity', { body: { items: [{ skuId: 'MUG', qty: 1.5 }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['a price sent by the client', { body: { items: [{ skuId: 'MUG', qty: 1, priceCents: 1 }], address: buyerAddress } }, 400, 'VALIDATION_FAILED'],
    ['an unknown top-level field', { body: { ...valid, discount: 100 } }, 400, 'VALIDATION_FAILED'],
    ['an address whose street is spaces alone', { body: { ...valid, address: { ...buyerAddress, line1: '   ' } } }, 400, 'VALIDATION_FAILED'],
    // a label printed blank or garbled: invisible characters alone, control characters anywhere
    ['an address whose name is a zero-width space alone', { body: { ...valid, address: { ...buyerAddress, name: '\u200b' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose postal code is a soft hyphen alone', { body: { ...valid, address: { ...buyerAddress, postalCode: '\u00ad' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose street is a NUL', { body: { ...valid, address: { ...buyerAddress, line1: '\u0000' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose name holds a line break', { body: { ...valid, address: { ...buyerAddress, name: 'Ada\r\nLovelace' } } }, 400, 'VALIDATION_FAILED'],
    // they break a label's line as a line feed does
    ['an address whose street holds a line separator (U+2028)', { body: { ...valid, address: { ...buyerAddress, line1: '1 Sale St\u2028Flat 2' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose city holds a paragraph separator (U+2029)', { body: { ...valid, address: { ...buyerAddress, city: 'Lon\u2029don' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose country is no ISO 3166-1 code', { body: { ...valid, address: { ...buyerAddress, country: 'ZZ' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose phone holds no digit', { body: { ...valid, address: { ...buyerAddress, phone: '----' } } }, 400, 'VALIDATION_FAILED'],
    ['an address whose phone holds 3 digits', { body: { ...valid, address: { ...buyerAddress, phone: '+1 (2) 3' } } }, 400, 'VALIDATION_FAILED'],
    ['an unknown SKU', { body: { items: [{ skuId: 'NO-SUCH-SKU', qty: 1 }], address: buyerAddress } }, 422, 'UNKNOWN_SKU'],
    ['a flash-sale order for a SKU with no sale', { body: { ...valid, orderType: 'flash_sale' } }, 422, 'SALE_NOT_ACTIVE'],
    ['a presale SKU and a standard SKU in one cart', { body: { ...valid, items: [{ skuId: 'MUG', qty: 1 }, { skuId: 'PRE-LAMP', qty: 1 }] } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['a virtual SKU and a standard SKU in one cart', { body: { ...valid, items: [{ skuId: 'E-VOUCHER', qty: 1 }, { skuId: 'MUG', qty: 1 }] } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['a presale SKU and a virtual SKU in one cart', { body: { ...valid, items: [{ skuId: 'PRE-LAMP', qty: 1 }, { skuId: 'E-VOUCHER', qty: 1 }] } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['a presale order for a standard SKU', { body: { ...valid, orderType: 'presale' } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['a standard order for a virtual SKU', { body: { ...valid, items: [{ skuId: 'E-VOUCHER', qty: 1 }], orderType: 'standard' } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['a flash-sale order for a presale SKU', { body: { ...valid, items: [{ skuId: 'PRE-LAMP', qty: 1 }], orderType: 'flash_sale' } }, 422, 'ORDER_TYPE_MISMATCH'],
    ['an order type no checkout makes', { body: { ...valid, orderType: 'imported' } }, 400, 'VALIDATION_FAILED'],
    ['no Idempotency-Key', { body: valid, key: null }, 400, 'VALIDATION_FAILED'],
    ['an Idempotency-Key over 255 characters', { body: valid, key: 'k'.repeat(256) }, 400, 'VALIDATION_FAILED'],
    ['a body that is not JSON', { raw: '{"items": [' }, 400, 'VALIDATION_FAILED'],
    ['a body over the size limit', { raw: JSON.stringify({ ...valid, address: { ...buyerAddress, line1: 'x'.repeat(5000) } }) }, 413, 'PAYLOAD_TOO_LARGE'],
    ['no token', { body: valid, token: () => undefined }, 401, 'UNAUTHORIZED'],
    ['a token signed with another secret', { body: valid, token: () => signToken('some-other-secret-of-32-chars!!', { sub: 'buyer-1', role: 'buyer' }) }, 401, 'UNAUTHORIZED'],
    ['an expired token', { body: valid, token: () => signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer', exp: Math.floor(Date.now() / 1000) - 60 }) }, 401, 'UNAUTHORIZED'],
    ['an unsigned token (alg none)', { body: valid, token: () => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"buyer-1","role":"buyer"}').toString('base64url')}.` }, 401, 'UNAUTHORIZED'],
    ['a token signed HS512 with the right secret (the api takes HS256 only)', { body: valid, token: () => signToken512(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer' }) }, 401, 'UNAUTHORIZED'],
    ['a token without exp', { body: valid, token: () => signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer', exp: undefined }) }, 401, 'UNAUTHORIZED'],
    ['a token expiring a year from now (past AUTH_JWT_MAX_LIFETIME_MS)', { body: valid, token: () => signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer', exp: Math.floor(Date.now() / 1000) + 365 * 86_400 }) }, 401, 'UNAUTHORIZED'],
    ['a token whose payload was changed after signing', { body: valid, token: () => withClaims(api.token('buyer-1'), { sub: 'buyer-2', role: 'admin' }) }, 401, 'UNAUTHORIZED'],
    ['a valid token sent as Basic', { body: valid, authorization: () => `Basic ${api.token('buyer-1')}` }, 401, 'UNAUTHORIZED'],
    ['Bearer and no token', { body: valid, authorization: () => 'Bearer ' }, 401, 'UNAUTHORIZED'],
    ['a token with an unknown role', { body: valid, token: () => signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'superuser' }) }, 401, 'UNAUTHORIZED'],
    ['a merchant token', { body: valid, token: () => api.token('shop', 'merchant') }, 403, 'FORBIDDEN'],
    // who may call comes before what was sent: a caller who may not gets no hints about the body
    ['no token and a body that would fail validation', { body: { items: [] }, token: () => undefined }, 401, 'UNAUTHORIZED'],
    ['a merchant token and a body that would fail validation', { body: { items: [] }, token: () => api.token('shop', 'merchant') }, 403, 'FORBIDDEN'],
  ];

  it.each(cases)('answers %s with the right problem', async (_name, input, status, code) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (input.key !== null) headers['idempotency-key'] = input.key ?? `key-${Math.random()}`;
    if (input.authorization) headers.authorization = input.authorization();
    const token = input.token ? input.token() : buyer;
    const response = await api.request('POST', '/v1/orders', { token, body: input.raw ?? input.body, headers });
    expect(response.status).toBe(status);
    expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.stringContaining('problem') });
    // a field the api does not take is named
    if (_name === 'an unknown top-level field') expect(response.body.detail).toBe('body must NOT have additional properties (discount)');
    if (_name.startsWith('a missing address')) expect(response.body.detail).toMatch(/^body must have required property 'address'/);
    if (_name.endsWith('in one cart')) expect(response.body.detail).toMatch(/^SKU \S+ is sold in (presale|virtual|standard) orders and SKU \S+ in (presale|virtual|standard) orders: they are bought in separate orders$/);
  });

  /** Sends bytes as they are (no client would send these) and reads what comes back until the api closes the connection. */
  const rawExchange = (url: string, request: string) =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(url);
      let answer = '';
      const socket = connect(Number(port), hostname, () => socket.end(request));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
    });

  it('answers what the HTTP parser refuses (a forbidden byte in a header, oversized headers) in problem details too, and closes the connection', async () => {
    const body = JSON.stringify(valid);
    const checkoutWith = (header: string) =>
      `POST /v1/orders HTTP/1.1\r\nhost: shop\r\nauthorization: Bearer ${buyer}\r\nidempotency-key: raw-${header.length}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${header}\r\n\r\n${body}`;
    for (const [header, status, code] of [
      ['x-note: a\u0001b', 400, 'BAD_REQUEST'],
      [`x-note: ${'a'.repeat(20_000)}`, 431, 'HEADERS_TOO_LARGE'],
    ] as const) {
      const [head, json] = (await rawExchange(api.url, checkoutWith(header))).split('\r\n\r\n');
      expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(head).toMatch(/^content-type: application\/problem\+json$/im);
      expect(head).toMatch(/^connection: close$/im);
      expect(JSON.parse(json!)).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.stringContaining('problem') });
    }
  });

  it("answers a path Fastify's router refuses (a broken percent escape, a segment over its 100 characters) in problem details too", async () => {
    for (const [method, path, status, code] of [
      ['GET', '/v1/orders/%', 400, 'VALIDATION_FAILED'],
      ['POST', '/v1/orders/%E0%A4%A/cancel', 400, 'VALIDATION_FAILED'],
      ['GET', `/v1/orders/${'0'.repeat(101)}`, 414, 'URI_TOO_LONG'],
      ['PUT', `/v1/admin/skus/${'M'.repeat(101)}/stock`, 414, 'URI_TOO_LONG'],
    ] as const) {
      const response = await api.request(method, path, { token: buyer });
      expect(response.status, path).toBe(status);
      expect(String(response.headers['content-type']), path).toMatch(/^application\/problem\+json/);
      expect(response.body, path).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.stringContaining('problem') });
    }
  });

  it('reserved nothing and queued nothing for any of them', async () => {
    for (const [skuId, units] of [['MUG', 10], ['PRE-LAMP', 5], ['E-VOUCHER', 5]] as const) {
      const stock = await api.request('GET', `/v1/admin/skus/${skuId}`, { token: api.token('ops', 'admin') });
      expect(stock.body.stock, skuId).toEqual({ available: units, reserved: 0, sold: 0 });
    }
    expect(await api.deps.queues.orders.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });
  });

  it("answers 404, never 403, for another buyer's order, an unknown id and a malformed id", async () => {
    const mine = await api.request('POST', '/v1/orders', { token: buyer, body: valid, headers: { 'idempotency-key': 'mine-1' } });
    expect(mine.status).toBe(202);
    for (const [token, path] of [
      [api.token('buyer-2'), mine.body.statusUrl],
      [buyer, '/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV'],
      [buyer, '/v1/orders/not-an-id'],
      [api.token('other-shop', 'merchant'), mine.body.statusUrl],
    ]) {
      const response = await api.request('GET', path, { token });
      expect(response.status).toBe(404);
      expect(response.body.code).toBe('NOT_FOUND');
    }
    expect((await api.request('GET', mine.body.statusUrl, { token: buyer })).status).toBe(200);
  });

  it('answers 404 for an id no order has however long it is (65 to 100 characters), on every route of an order, with or without a body', async () => {
    for (const id of ['A'.repeat(65), '0'.repeat(100)]) {
      for (const [method, path, body] of [
        ['GET', `/v1/orders/${id}`],
        ['POST', `/v1/orders/${id}/pay`, { method: 'card' }],
        ['POST', `/v1/orders/${id}/cancel`, { reason: 'changed my mind' }],
        ['PATCH', `/v1/orders/${id}/address`, { address: buyerAddress }],
        ['POST', `/v1/orders/${id}/confirm-receipt`],
        ['GET', `/v1/orders/${id}/refunds`],
        ['POST', `/v1/orders/${id}/refunds`, { reason: 'broken' }],
        ['POST', `/v1/orders/${id}/returns`, { reason: 'broken', items: [{ skuId: 'MUG', qty: 1 }] }],
        ['POST', `/v1/orders/${id}/returns/${'R'.repeat(80)}/approve`],
      ] as const) {
        const token = path.endsWith('/approve') ? api.token('ops', 'admin') : buyer;
        const response = await api.request(method, path, { token, ...(body ? { body } : {}) });
        expect([method, path.length, response.status, response.body.code]).toEqual([method, path.length, 404, 'NOT_FOUND']);
      }
    }
  });

  it('takes a POST that sends content-type application/json and no body as one without a body: a route taking none answers as it would, one needing a body refuses it 400', async () => {
    const unknown = '/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV';
    const json = { 'content-type': 'application/json' };
    const confirm = await api.request('POST', `${unknown}/confirm-receipt`, { token: buyer, headers: json });
    expect([confirm.status, confirm.body.code]).toEqual([404, 'NOT_FOUND']);
    const cancel = await api.request('POST', `${unknown}/cancel`, { token: buyer, headers: json });
    expect([cancel.status, cancel.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    const checkout = await api.request('POST', '/v1/orders', { token: buyer, headers: { ...json, 'idempotency-key': 'empty-json-1' } });
    expect([checkout.status, checkout.body.code]).toEqual([400, 'VALIDATION_FAILED']);
  });

  it('tells the buyer of an order still in the queue to retry paying, cancelling or changing it, and changes nothing', async () => {
    // no worker runs in this file: the order stays ACCEPTED
    await createSku(api, api.token('ops', 'admin'), { skuId: 'KETTLE', title: 'Kettle', priceCents: 2_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 5, deduction: 'placement' });
    const queued = await api.request('POST', '/v1/orders', { token: buyer, body: { ...valid, items: [{ skuId: 'KETTLE', qty: 1 }] }, headers: { 'idempotency-key': 'queued-1' } });
    expect(queued.status).toBe(202);
    const attempts: Array<[string, string, unknown]> = [
      ['pay', 'pay', { method: 'card' }],
      ['cancel', 'cancel', { reason: 'changed my mind' }],
      ['refunds', 'refund', { reason: 'changed my mind' }],
      ['confirm-receipt', 'confirm_receipt', undefined],
      ['returns', 'request_return', { reason: 'changed my mind', items: [{ skuId: 'KETTLE', qty: 1 }] }],
    ];
    for (const [path, action, body] of attempts) {
      const response = await api.request('POST', `${queued.body.statusUrl}/${path}`, { token: buyer, body });
      expect(response.status, path).toBe(409);
      expect(response.body).toMatchObject({ code: 'ILLEGAL_TRANSITION', status: 409 });
      expect(response.body.detail).toContain(`'${action}'`);
      expect(response.headers['retry-after']).toBe('1');
    }
    // its refunds and returns: none yet (not "no such order")
    expect((await api.request('GET', `${queued.body.statusUrl}/refunds`, { token: buyer })).body).toEqual({ items: [] });
    expect((await api.request('GET', `${queued.body.statusUrl}/refunds`, { token: api.token('buyer-2') })).status).toBe(404);
    const moved = await api.request('PATCH', `${queued.body.statusUrl}/address`, { token: buyer, body: { address: { ...buyerAddress, city: 'Elsewhere' } } });
    expect(moved.status).toBe(409);
    expect(moved.body.detail).toContain("'change_address'");
    expect(moved.headers['retry-after']).toBe('1');
    // to anyone else the order does not exist
    expect((await api.request('POST', `${queued.body.statusUrl}/pay`, { token: api.token('buyer-2'), body: { method: 'card' } })).status).toBe(404);
    const view = await api.request('GET', queued.body.statusUrl, { token: buyer });
    expect(view.body).toMatchObject({ status: 'ACCEPTED', address: buyerAddress });
    // support and the kettle's merchant find it too, as they will once it is persisted; another merchant does not
    for (const [who, token] of [['admin', api.token('ops', 'admin')], ['merchant', api.token('shop', 'merchant')]] as const) {
      expect((await api.request('GET', queued.body.statusUrl, { token })).body, who).toMatchObject({ orderId: queued.body.orderId, status: 'ACCEPTED' });
      const cancel = await api.request('POST', `${queued.body.statusUrl}/cancel`, { token, body: { reason: 'support' } });
      expect([cancel.status, cancel.headers['retry-after'], cancel.body.detail], who).toEqual([409, '1', expect.stringContaining(`'cancel' by ${who}`)]);
    }
    const stranger = api.token('other-shop', 'merchant');
    expect((await api.request('GET', queued.body.statusUrl, { token: stranger })).status).toBe(404);
    expect((await api.request('POST', `${queued.body.statusUrl}/cancel`, { token: stranger, body: { reason: 'support' } })).status).toBe(404);
    expect((await api.request('GET', '/v1/admin/skus/KETTLE', { token: api.token('ops', 'admin') })).body.stock).toMatchObject({ available: 4, reserved: 1 });
  });

  it('lists no actions (200, ACCEPTED) for an order still in the queue to its merchant and support, refuses firing one with 409 and retry-after, and stays 404 to another merchant', async () => {
    // no worker runs in this file: the order stays ACCEPTED
    await createSku(api, api.token('ops', 'admin'), { skuId: 'TEAPOT', title: 'Teapot', priceCents: 1_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 5, deduction: 'placement' });
    const queued = await api.request('POST', '/v1/orders', { token: buyer, body: { ...valid, items: [{ skuId: 'TEAPOT', qty: 1 }] }, headers: { 'idempotency-key': 'queued-actions' } });
    expect(queued.status).toBe(202);
    const actionsUrl = `${queued.body.statusUrl}/actions`;
    for (const token of [api.token('ops', 'admin'), api.token('shop', 'merchant')]) {
      const listed = await api.request('GET', actionsUrl, { token });
      expect([listed.status, listed.body]).toEqual([200, expect.objectContaining({ orderId: queued.body.orderId, status: 'ACCEPTED', actions: [] })]);
    }
    const fired = await api.request('POST', `${actionsUrl}/ship`, { token: api.token('shop', 'merchant') });
    expect([fired.status, fired.body.code, fired.headers['retry-after']]).toEqual([409, 'ILLEGAL_TRANSITION', '1']);
    expect((await api.request('GET', actionsUrl, { token: api.token('other-shop', 'merchant') })).status).toBe(404);
  });

  it("shows each merchant only its own lines of an order still in the queue that holds another merchant's too, and the buyer all of them; lists either merchant no actions and refuses its cancel, refund or action at once (403), as once it is persisted", async () => {
    // no worker runs in this file: the order stays ACCEPTED
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'CREAMER', title: 'Creamer', priceCents: 1_299, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 5, deduction: 'placement' });
    await createSku(api, admin, { skuId: 'SAUCER', title: 'Saucer', priceCents: 499, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-south', stock: 5, deduction: 'placement' });
    const queued = await api.request('POST', '/v1/orders', { token: buyer, body: { ...valid, items: [{ skuId: 'CREAMER', qty: 1 }, { skuId: 'SAUCER', qty: 2 }] }, headers: { 'idempotency-key': 'queued-two-merchants' } });
    expect(queued.status).toBe(202);
    const lines = async (token: string) => (await api.request('GET', queued.body.statusUrl, { token })).body.items;
    expect(await lines(buyer)).toEqual([{ skuId: 'CREAMER', qty: 1 }, { skuId: 'SAUCER', qty: 2 }]);
    expect(await lines(api.token('shop', 'merchant'))).toEqual([{ skuId: 'CREAMER', qty: 1 }]);
    expect(await lines(api.token('potter', 'merchant'))).toEqual([{ skuId: 'SAUCER', qty: 2 }]);
    // neither merchant may cancel it once it is persisted: 403 now, not "retry once it is PENDING_PAYMENT"
    for (const merchant of ['shop', 'potter']) {
      const cancel = await api.request('POST', `${queued.body.statusUrl}/cancel`, { token: api.token(merchant, 'merchant'), body: { reason: 'out of stock' } });
      expect([cancel.status, cancel.body.code, cancel.headers['retry-after']], merchant).toEqual([403, 'FORBIDDEN', undefined]);
      const refund = await api.request('POST', `${queued.body.statusUrl}/refunds`, { token: api.token(merchant, 'merchant'), body: { reason: 'out of stock' } });
      expect([refund.status, refund.body.code], merchant).toEqual([403, 'FORBIDDEN']);
      const listed = await api.request('GET', `${queued.body.statusUrl}/actions`, { token: api.token(merchant, 'merchant') });
      expect([listed.status, listed.body], merchant).toEqual([200, expect.objectContaining({ orderId: queued.body.orderId, status: 'ACCEPTED', actions: [] })]);
      const shipped = await api.request('POST', `${queued.body.statusUrl}/actions/ship`, { token: api.token(merchant, 'merchant') });
      expect([shipped.status, shipped.body.code, shipped.headers['retry-after']], merchant).toEqual([403, 'FORBIDDEN', undefined]);
    }
    // the buyer and support may act on it once it is persisted: retry then
    expect((await api.request('POST', `${queued.body.statusUrl}/cancel`, { token: buyer, body: { reason: 'changed my mind' } })).status).toBe(409);
    const bySupport = await api.request('POST', `${queued.body.statusUrl}/actions/ship`, { token: admin });
    expect([bySupport.status, bySupport.body.code, bySupport.headers['retry-after']]).toEqual([409, 'ILLEGAL_TRANSITION', '1']);
  });

  it('refuses a token once it expires, although it was verified (and cached) while valid, and one expiring further ahead than the api accepts', async () => {
    // valid for 4 to 5 s: time enough for its first request on a loaded box
    const exp = Math.floor(Date.now() / 1000) + 5;
    const shortLived = signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-1', role: 'buyer', exp });
    expect((await api.request('GET', '/v1/orders', { token: shortLived })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 1_100));
    const expired = await api.request('GET', '/v1/orders', { token: shortLived });
    expect(expired.status).toBe(401);
    expect(expired.body).toMatchObject({ code: 'UNAUTHORIZED', detail: 'The token has expired' });
    expect(expired.headers['www-authenticate']).toBe('Bearer realm="orders", error="invalid_token"');
    expect((await api.request('GET', '/v1/orders')).headers['www-authenticate']).toBe('Bearer realm="orders"');
    // a token that has not been seen before and has expired says so too; a forged one does not
    const expiredUnseen = signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-9', role: 'buyer', exp: Math.floor(Date.now() / 1000) - 5 });
    expect((await api.request('GET', '/v1/orders', { token: expiredUnseen })).body).toMatchObject({ code: 'UNAUTHORIZED', detail: 'The token has expired' });
    const forged = signToken('some-other-secret-of-32-chars!!', { sub: 'buyer-9', role: 'buyer' });
    expect((await api.request('GET', '/v1/orders', { token: forged })).body).toMatchObject({ code: 'UNAUTHORIZED', detail: 'The token is not valid' });
    // a token expiring further ahead than AUTH_JWT_MAX_LIFETIME_MS (7 days) says so; one within it is taken
    const nowS = Math.floor(Date.now() / 1000);
    const minted = (days: number) => signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-9', role: 'buyer', exp: nowS + days * 86_400 });
    expect((await api.request('GET', '/v1/orders', { token: minted(8) })).body).toMatchObject({ code: 'UNAUTHORIZED', detail: 'The token expires more than 7 days from now, later than the api accepts' });
    expect((await api.request('GET', '/v1/orders', { token: minted(6) })).status).toBe(200);
  });

  it('rejects bad catalog input and a second SKU with the same id', async () => {
    const admin = api.token('ops', 'admin');
    const duplicate = await api.request('POST', '/v1/admin/skus', {
      token: admin,
      body: { skuId: 'MUG', title: 'Mug again', priceCents: 1, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 1, deduction: 'placement' },
    });
    expect(duplicate.status).toBe(409);
    const backwardsSale = await api.request('POST', '/v1/admin/skus', {
      token: admin,
      body: {
        skuId: 'BACKWARDS', title: 'x', priceCents: 100, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 1, deduction: 'placement',
        flashSale: { priceCents: 50, startsAt: '2030-01-02T00:00:00Z', endsAt: '2030-01-01T00:00:00Z', perUserLimit: 1 },
      },
    });
    expect(backwardsSale.status).toBe(400);
    const negativeStock = await api.request('PUT', '/v1/admin/skus/MUG/stock', { token: admin, body: { stock: -5 } });
    expect(negativeStock.status).toBe(400);
    const buyerCannotAdmin = await api.request('PUT', '/v1/admin/skus/MUG/stock', { token: buyer, body: { stock: 5 } });
    expect(buyerCannotAdmin.status).toBe(403);
    const buyerWithBadStock = await api.request('PUT', '/v1/admin/skus/MUG/stock', { token: buyer, body: { stock: -5 } });
    expect(buyerWithBadStock.status).toBe(403);
    const unknownRoute = await api.request('GET', '/v1/nothing-here');
    expect(unknownRoute.status).toBe(404);
    expect(unknownRoute.body.code).toBe('NOT_FOUND');
    const badCursor = await api.request('GET', '/v1/orders?cursor=%%%', { token: buyer });
    expect(badCursor.status).toBe(400);
    // a filter naming no type or status is a typo, not an empty list
    for (const filter of ['type=flashsale', 'status=SHIPPPED', 'status=shipped']) {
      const typo = await api.request('GET', `/v1/orders?${filter}`, { token: buyer });
      expect([typo.status, typo.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    }
    expect((await api.request('GET', '/v1/orders?type=flash_sale&status=PENDING_PAYMENT', { token: buyer })).status).toBe(200);
  });

  it("refuses a SKU whose id or warehouse id is a path's dot segment (. or ..), which no URL could address once created", async () => {
    const admin = api.token('ops', 'admin');
    const sku = { title: 'x', priceCents: 100, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 1, deduction: 'placement' };
    for (const [skuId, warehouseId] of [['.', 'wh'], ['..', 'wh'], ['DOTS', '.'], ['DOTS', '..']] as const) {
      const refused = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...sku, skuId, warehouseId } });
      expect([refused.status, refused.body.code], `${skuId} in ${warehouseId}`).toEqual([400, 'VALIDATION_FAILED']);
      expect(await api.deps.catalog.findSku(skuId), `${skuId} in ${warehouseId}`).toBeNull();
    }
    // dots within an id are ids like any other
    const dotted = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...sku, skuId: '...', warehouseId: 'wh.2' } });
    expect([dotted.status, dotted.headers.location]).toEqual([201, '/v1/admin/skus/...']);
    expect((await api.request('GET', '/v1/admin/skus/...', { token: admin })).body).toMatchObject({ skuId: '...', warehouseId: 'wh.2' });
  });

  it('refuses a flash sale on a presale or virtual SKU, a presale SKU deducted at payment and stock buckets of a SKU deducted at payment, and shows each SKU’s order type', async () => {
    const admin = api.token('ops', 'admin');
    const now = Date.now();
    const flashSale = { priceCents: 50, startsAt: new Date(now - 3_600_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 1 };
    const sku = { title: 'x', priceCents: 100, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 1, deduction: 'placement' };
    const refusals: Array<[string, Record<string, unknown>, RegExp]> = [
      ['PRE-SALE-ON-SALE', { orderType: 'presale', flashSale }, /^A presale SKU has no flash sale/],
      ['VOUCHER-ON-SALE', { orderType: 'virtual', flashSale }, /^A virtual SKU has no flash sale/],
      ['PRE-PAY-LATER', { orderType: 'presale', deduction: 'payment' }, /^A presale SKU is deducted at placement, not at payment/],
      ['IMPORTED-KIND', { orderType: 'imported' }, /orderType/],
      ['BUCKETS-PAY-LATER', { deduction: 'payment', stockBuckets: 4 }, /^stockBuckets 4 needs deduction 'placement'/],
    ];
    for (const [skuId, rules, detail] of refusals) {
      const refused = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...sku, skuId, ...rules } });
      expect([refused.status, refused.body.code], skuId).toEqual([400, 'VALIDATION_FAILED']);
      expect(refused.body.detail, skuId).toMatch(detail);
      // neither in the catalog nor in Redis
      expect((await api.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).status, skuId).toBe(404);
      expect(await env.redis.exists(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:${skuId}`), skuId).toBe(0);
    }
    // a virtual SKU deducted at payment is checked at checkout and taken when paid, as any other
    const paidLater = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...sku, skuId: 'VOUCHER-PAY-LATER', orderType: 'virtual', deduction: 'payment' } });
    expect([paidLater.status, paidLater.body.orderType, paidLater.body.deduction]).toEqual([201, 'virtual', 'payment']);
    for (const [skuId, orderType] of [['MUG', 'standard'], ['PRE-LAMP', 'presale'], ['E-VOUCHER', 'virtual']]) {
      expect((await api.request('GET', `/v1/admin/skus/${skuId}`, { token: admin })).body.orderType, skuId).toBe(orderType);
      expect(await env.redis.hget(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:${skuId}`, 'orderType'), skuId).toBe(orderType);
    }
  });

  it('refuses a flash-sale price above the list price with 400 VALIDATION_FAILED naming both, creating nothing; a sale at the list price is taken', async () => {
    const admin = api.token('ops', 'admin');
    const now = Date.now();
    const sale = { startsAt: new Date(now - 3_600_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 1 };
    const lamp = { title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 5, deduction: 'placement' };
    const refused = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...lamp, skuId: 'LAMP-DEARER-ON-SALE', flashSale: { priceCents: 10_001, ...sale } } });
    expect([refused.status, refused.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(refused.body.detail).toBe('flashSale.priceCents 10001 is above priceCents 10000: a flash sale sells at the list price or below');
    // neither in the catalog nor in Redis
    expect(await api.deps.catalog.findSku('LAMP-DEARER-ON-SALE')).toBeNull();
    expect(await env.redis.exists(`${env.config.REDIS_KEY_PREFIX}{g0}:sku:LAMP-DEARER-ON-SALE`)).toBe(0);
    const atList = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...lamp, skuId: 'LAMP-AT-LIST', flashSale: { priceCents: 10_000, ...sale } } });
    expect([atList.status, atList.body.flashSale?.priceCents]).toEqual([201, 10_000]);
  });

  it('refuses a flash sale opening before 1970 with 400 VALIDATION_FAILED, creating nothing: Redis counts its buyers from its start in milliseconds since then', async () => {
    const admin = api.token('ops', 'admin');
    const lamp = { title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh', stock: 5, deduction: 'placement' };
    const sale = { priceCents: 5_000, startsAt: '1969-12-31T00:00:00Z', endsAt: new Date(Date.now() + 3_600_000).toISOString(), perUserLimit: 5 };
    const refused = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...lamp, skuId: 'LAMP-SALE-1969', flashSale: sale } });
    expect([refused.status, refused.body.code, refused.body.detail]).toEqual([400, 'VALIDATION_FAILED', expect.stringMatching(/^flashSale\.startsAt 1969-12-31T00:00:00Z is before 1970/)]);
    expect(await api.deps.catalog.findSku('LAMP-SALE-1969')).toBeNull();
    // from 1970 on it sells, to a buyer again and again up to the limit
    const taken = await api.request('POST', '/v1/admin/skus', { token: admin, body: { ...lamp, skuId: 'LAMP-SALE-1970', flashSale: { ...sale, startsAt: '1970-01-01T00:00:00Z' } } });
    expect(taken.status).toBe(201);
    for (const key of ['sale-1970-a', 'sale-1970-b']) {
      const checkout = await api.request('POST', '/v1/orders', { token: api.token('buyer-1970'), body: { items: [{ skuId: 'LAMP-SALE-1970', qty: 1 }], address: buyerAddress }, headers: { 'idempotency-key': key } });
      expect([key, checkout.status]).toEqual([key, 202]);
    }
  });

  it('sets stock in Redis and the ledger together', async () => {
    const admin = api.token('ops', 'admin');
    const set = await api.request('PUT', '/v1/admin/skus/MUG/stock', { token: admin, body: { stock: 25 } });
    expect(set.status).toBe(200);
    expect(set.body.stock.available).toBe(25);
    // The ledger holds the opening 10 plus this +16 (9 were available after the order above).
    // That order's -1 reservation reaches the ledger when a worker persists it: none runs in this file.
    expect(await ledgerAvailable(env.db, 'MUG')).toBe(26);
  });

  it('refuses with 400 VALIDATION_FAILED a cart whose lines of one SKU add up to 1,000 units, past MAX_LINE_QTY (999), naming the SKU and reserving nothing; lines adding up to 999 are one line of 999', async () => {
    const admin = api.token('ops', 'admin');
    await createSku(api, admin, { skuId: 'TEA-BAGS', title: 'Tea bags', priceCents: 5, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 2_000, deduction: 'placement' });
    const teaBuyer = api.token('tea-buyer');
    const checkout = (key: string, items: Array<{ skuId: string; qty: number }>) =>
      api.request('POST', '/v1/orders', { token: teaBuyer, headers: { 'idempotency-key': key }, body: { items, address: buyerAddress } });
    const teaStock = async () => (await api.request('GET', '/v1/admin/skus/TEA-BAGS', { token: admin })).body.stock;

    const refused = await checkout('tea-1', [{ skuId: 'TEA-BAGS', qty: 999 }, { skuId: 'TEA-BAGS', qty: 1 }]);
    expect([refused.status, refused.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(String(refused.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(refused.body.detail).toBe('body/items: the lines of SKU TEA-BAGS add up to 1000 units, more than the 999 one line may hold (lines of one SKU are one line of their sum)');
    expect(await teaStock()).toEqual({ available: 2_000, reserved: 0, sold: 0 });
    // no order under the key: the same key with a valid cart is a checkout of its own
    expect(await api.deps.inventory.checkoutRecorded('tea-buyer', 'tea-1')).toBe(false);

    const merged = await checkout('tea-2', [{ skuId: 'TEA-BAGS', qty: 998 }, { skuId: 'TEA-BAGS', qty: 1 }]);
    expect(merged.status).toBe(202);
    const order = await api.request('GET', merged.body.statusUrl, { token: teaBuyer });
    expect(order.body.items).toMatchObject([{ skuId: 'TEA-BAGS', qty: 999 }]);
    expect(order.body.items).toHaveLength(1);
    expect(await teaStock()).toEqual({ available: 1_001, reserved: 999, sold: 0 });
  });
});
