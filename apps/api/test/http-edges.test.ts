import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

interface RawAnswer { status: number; head: string; contentType: string; text: string; informational: string[] }

/** One request as bytes over its own connection; the answer read until the api closes it (or 4 s pass: a hang). */
function raw(url: string, method: string, path: string, headers: Array<[string, string]>, body?: Buffer | string): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, 'host: shop', 'connection: close', ...headers.map(([name, value]) => `${name}: ${value}`)];
  if (payload && !headers.some(([name]) => /^(content-length|transfer-encoding)$/i.test(name))) lines.push(`content-length: ${payload.length}`);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (payload) socket.write(payload);
    });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${method} ${path}: no answer within 4 s`)); }, 4_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      let rest = Buffer.concat(chunks).toString('latin1');
      const informational: string[] = [];
      while (/^HTTP\/1\.1 1\d\d /.test(rest)) {
        const end = rest.indexOf('\r\n\r\n');
        informational.push(rest.slice(0, end));
        rest = rest.slice(end + 4);
      }
      const end = rest.indexOf('\r\n\r\n');
      const head = end >= 0 ? rest.slice(0, end) : rest;
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, contentType: /^content-type: (.*)$/im.exec(head)?.[1] ?? '', text: end >= 0 ? Buffer.from(rest.slice(end + 4), 'latin1').toString('utf8') : '', informational });
    });
  });
}

describe('HTTP edges', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let orderUrl: string;
  const valid = { items: [{ skuId: 'MUG', qty: 1 }], address: buyerAddress };

  beforeAll(async () => {
    env = await createTestEnv('http_edges', { BODY_LIMIT_BYTES: '4096', RATE_LIMIT_PER_USER: '100000', RATE_LIMIT_PER_IP: '100000' });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'MUG', title: 'Mug', priceCents: 899, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const order = await api.request('POST', '/v1/orders', { token: api.token('buyer-1'), body: valid, headers: { 'idempotency-key': 'setup-1' } });
    orderUrl = order.body.statusUrl;
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const problemOf = (answer: RawAnswer, what: string, status: number, code: string) => {
    expect(answer.status, what).toBe(status);
    expect(answer.contentType, what).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.text), what).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.stringContaining('problem') });
  };
  const sign = (secret: string, body: Buffer | string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  /** The five routes a body is sent to, each with what it needs to get past its caller check (a token, a fresh key, a valid signature). */
  const routes = (): Array<[string, (body: Buffer | string) => Array<[string, string]>]> => [
    ['/v1/orders', () => [['authorization', `Bearer ${api.token('buyer-1')}`], ['idempotency-key', `edge-${Math.random()}`]]],
    [`${orderUrl}/pay`, () => [['authorization', `Bearer ${api.token('buyer-1')}`]]],
    ['/v1/callbacks/payment', (body) => [['x-signature', sign(env.config.PAYMENT_CALLBACK_SECRET, body)]]],
    ['/v1/callbacks/warehouse', (body) => [['x-signature', sign(env.config.WAREHOUSE_CALLBACK_SECRET, body)]]],
    ['/v1/admin/skus', () => [['authorization', `Bearer ${api.token('ops', 'admin')}`]]],
  ];

  it('refuses a body sent gzip- or br-encoded with 415 UNSUPPORTED_MEDIA_TYPE (accept-encoding: identity) on checkout, pay, both callbacks and an admin route, one declared in a charset other than UTF-8, and one not valid UTF-8 or escaping half a surrogate pair with 400', async () => {
    const json = JSON.stringify(valid);
    for (const [path, callerHeaders] of routes()) {
      // a br body that is in fact plain JSON would otherwise be taken as sent: a checkout made
      for (const [coding, body] of [['gzip', gzipSync(json)], ['br', Buffer.from(json)], ['deflate, gzip', Buffer.from(json)]] as const) {
        const answer = await raw(api.url, 'POST', path, [...callerHeaders(body), ['content-type', 'application/json'], ['content-encoding', coding]], body);
        problemOf(answer, `${coding} to ${path}`, 415, 'UNSUPPORTED_MEDIA_TYPE');
        expect(answer.head, `${coding} to ${path}`).toMatch(/^accept-encoding: identity$/im);
      }
    }
    // a body declared in another charset than UTF-8 would be read as UTF-8 all the same: a latin1 'é' stored garbled
    const latin1 = Buffer.from(JSON.stringify({ ...valid, address: { ...buyerAddress, name: 'Zoé' } }), 'latin1');
    // the parameter's name in any case too (RFC 9110: case-insensitive)
    for (const parameter of ['charset=latin1', 'charset=ISO-8859-1', 'charset="utf-16"', 'Charset=ISO-8859-1', 'CHARSET=latin1']) {
      const answer = await raw(api.url, 'POST', '/v1/orders', [...routes()[0]![1](latin1), ['content-type', `application/json; ${parameter}`]], latin1);
      problemOf(answer, parameter, 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    // and one declaring nothing, in bytes that are not UTF-8: each would be read as U+FFFD
    for (const [path, callerHeaders] of routes()) {
      const answer = await raw(api.url, 'POST', path, [...callerHeaders(latin1), ['content-type', 'application/json']], latin1);
      problemOf(answer, `latin1 to ${path}`, 400, 'VALIDATION_FAILED');
      expect(JSON.parse(answer.text).detail, path).toBe('The body is not valid UTF-8: send JSON in UTF-8');
    }
    // valid UTF-8 escaping half a surrogate pair: MySQL would keep U+FFFD for it (ids that differ only there collide)
    const halfPair = JSON.stringify({ ...valid, address: { ...buyerAddress, name: 'Zo\ud800' } });
    expect(halfPair).toContain('\\ud800');
    for (const [path, callerHeaders] of routes()) {
      const answer = await raw(api.url, 'POST', path, [...callerHeaders(halfPair), ['content-type', 'application/json']], halfPair);
      problemOf(answer, `half a pair to ${path}`, 400, 'VALIDATION_FAILED');
      expect(JSON.parse(answer.text).detail, path).toMatch(/half a UTF-16 surrogate pair/);
    }
    // a whole pair, escaped, is one character like any other
    const wholePair = JSON.stringify({ ...valid, address: { ...buyerAddress, name: 'Zoe \ud83d\ude00' } }).replace('\u{1F600}', '\\ud83d\\ude00');
    expect(wholePair).toContain('\\ud83d\\ude00');
    const taken = await raw(api.url, 'POST', '/v1/orders', [['authorization', `Bearer ${api.token('buyer-2')}`], ['idempotency-key', 'whole-pair-1'], ['content-type', 'application/json']], wholePair);
    expect(taken.status).toBe(202);
    for (const [key, charset] of [['utf8-1', 'UTF-8'], ['utf8-2', '"utf-8"'], ['ascii-1', 'us-ascii']]) {
      const body = JSON.stringify(valid);
      const answer = await raw(api.url, 'POST', '/v1/orders', [['authorization', `Bearer ${api.token('buyer-2')}`], ['idempotency-key', key!], ['content-type', `application/json; charset=${charset}`]], body);
      expect([charset, answer.status]).toEqual([charset, 202]);
    }
    // identity is no coding at all
    const identity = await raw(api.url, 'POST', '/v1/orders', [['authorization', `Bearer ${api.token('buyer-2')}`], ['idempotency-key', 'identity-1'], ['content-type', 'application/json'], ['content-encoding', 'identity']], JSON.stringify({ ...valid, items: [{ skuId: 'MUG', qty: 2 }] }));
    expect(identity.status).toBe(202);
  });

  it('answers an Expect other than 100-continue with 417 EXPECTATION_FAILED problem details; 100-continue gets its interim 100 and the answer', async () => {
    for (const [path, callerHeaders] of routes()) {
      const body = JSON.stringify(valid);
      const answer = await raw(api.url, 'POST', path, [...callerHeaders(body), ['content-type', 'application/json'], ['expect', 'something-else']], body);
      problemOf(answer, path, 417, 'EXPECTATION_FAILED');
    }
    const continued = await raw(api.url, 'POST', '/v1/orders', [['authorization', `Bearer ${api.token('buyer-3')}`], ['idempotency-key', 'continue-1'], ['content-type', 'application/json'], ['expect', '100-continue']], JSON.stringify(valid));
    expect(continued.informational).toEqual(['HTTP/1.1 100 Continue']);
    expect(continued.status).toBe(202);
  });

  it('refuses a wrong or missing content type and a body of JSON null, an array, a number, 10,000 levels of nesting or a chunked body past the limit with a 4xx problem', async () => {
    const json = JSON.stringify(valid);
    const cases: Array<[string, Array<[string, string]>, string, number, string]> = [
      ['text/plain', [['content-type', 'text/plain']], json, 400, 'VALIDATION_FAILED'],
      ['form-urlencoded', [['content-type', 'application/x-www-form-urlencoded']], 'items=1', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['no content type', [], json, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['application/vnd.api+json', [['content-type', 'application/vnd.api+json']], json, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['JSON null', [['content-type', 'application/json']], 'null', 400, 'VALIDATION_FAILED'],
      ['a JSON array', [['content-type', 'application/json']], '[]', 400, 'VALIDATION_FAILED'],
      ['a JSON number', [['content-type', 'application/json']], '42', 400, 'VALIDATION_FAILED'],
      ['an empty body', [['content-type', 'application/json']], '', 400, 'VALIDATION_FAILED'],
      // 10,000 levels are 20,000 bytes: past BODY_LIMIT_BYTES (4096) before any parser recurses
      ['10,000 nested arrays', [['content-type', 'application/json']], `${'['.repeat(10_000)}${']'.repeat(10_000)}`, 413, 'PAYLOAD_TOO_LARGE'],
      ['a chunked body past the limit', [['content-type', 'application/json'], ['transfer-encoding', 'chunked']], `2710\r\n${'x'.repeat(10_000)}\r\n0\r\n\r\n`, 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [path, callerHeaders] of routes()) {
      for (const [name, headers, body, status, code] of cases) {
        // text/plain reaches no parser: the callbacks' signature check answers first
        const expected: [number, string] = name === 'text/plain' && path.startsWith('/v1/callbacks') ? [401, 'UNAUTHORIZED'] : [status, code];
        problemOf(await raw(api.url, 'POST', path, [...callerHeaders(body), ...headers], body), `${name} to ${path}`, ...expected);
      }
    }
  });

  it('answers a caller without a token, or with a role the route does not admit, 401 or 403 before its body is read: a malformed or oversized body changes nothing', async () => {
    const bodies: Array<[string, string]> = [
      ['malformed JSON', '{bad'],
      ['a body past the limit', JSON.stringify({ ...valid, address: { ...buyerAddress, line1: 'x'.repeat(5_000) } })],
      ['a well-formed one', JSON.stringify(valid)],
    ];
    const callers: Array<[string, Array<[string, string]>, number, string]> = [
      ['no token', [], 401, 'UNAUTHORIZED'],
      ["a merchant's token", [['authorization', `Bearer ${api.token('shop', 'merchant')}`]], 403, 'FORBIDDEN'],
    ];
    for (const [caller, callerHeaders, status, code] of callers) {
      for (const [name, body] of bodies) {
        const headers: Array<[string, string]> = [...callerHeaders, ['content-type', 'application/json'], ['idempotency-key', `refused-${Math.random()}`]];
        problemOf(await raw(api.url, 'POST', '/v1/orders', headers, body), `${name} with ${caller}`, status, code);
      }
    }
  });

  it('answers a method a route lacks, OPTIONS, a trailing or double slash and a repeated Idempotency-Key with a 4xx problem; HEAD and a GET with a body as a GET', async () => {
    const buyer: [string, string] = ['authorization', `Bearer ${api.token('buyer-1')}`];
    const json = JSON.stringify(valid);
    const cases: Array<[string, string, Array<[string, string]>, string | undefined, number, string]> = [
      ['DELETE', '/v1/orders', [buyer], undefined, 404, 'NOT_FOUND'],
      ['PUT', '/v1/orders', [buyer, ['content-type', 'application/json']], '{}', 404, 'NOT_FOUND'],
      ['GET', '/v1/callbacks/payment', [], undefined, 404, 'NOT_FOUND'],
      ['OPTIONS', '/v1/orders', [['origin', 'https://elsewhere.example'], ['access-control-request-method', 'POST']], undefined, 404, 'NOT_FOUND'],
      ['GET', '/v1/orders/', [buyer], undefined, 404, 'NOT_FOUND'],
      ['GET', '//v1/orders', [buyer], undefined, 404, 'NOT_FOUND'],
      ['POST', '/v1/orders/', [buyer, ['content-type', 'application/json'], ['idempotency-key', 'slash-1']], json, 404, 'NOT_FOUND'],
      ['POST', '/v1//orders', [buyer, ['content-type', 'application/json'], ['idempotency-key', 'slash-2']], json, 404, 'NOT_FOUND'],
      // two keys reach the api as one "a, b": a key no checkout takes, not the first or the last
      ['POST', '/v1/orders', [buyer, ['content-type', 'application/json'], ['idempotency-key', 'dup-a'], ['idempotency-key', 'dup-b']], json, 400, 'VALIDATION_FAILED'],
      ['POST', '/v1/orders', [buyer, ['content-type', 'application/json'], ['idempotency-key', 'dup-c'], ['idempotency-key', 'dup-c']], json, 400, 'VALIDATION_FAILED'],
    ];
    for (const [method, path, headers, body, status, code] of cases) {
      problemOf(await raw(api.url, method, path, headers, body), `${method} ${path}`, status, code);
    }
    for (const path of ['/v1/orders', orderUrl]) {
      const head = await raw(api.url, 'HEAD', path, [buyer]);
      expect([head.status, head.contentType, head.text], path).toEqual([200, 'application/json; charset=utf-8', '']);
    }
    const unauthorizedHead = await raw(api.url, 'HEAD', '/v1/orders', []);
    expect([unauthorizedHead.status, unauthorizedHead.contentType, unauthorizedHead.text]).toEqual([401, 'application/problem+json; charset=utf-8', '']);
    // the buyer's list (their order still in the queue) as a GET without a body reads it
    const plain = JSON.parse((await raw(api.url, 'GET', '/v1/orders', [buyer])).text);
    expect(plain.items.map((order: { orderId: string }) => `/v1/orders/${order.orderId}`)).toEqual([orderUrl]);
    for (const body of ['{"x":1}', '{broken', 'x'.repeat(10_000)]) {
      const listed = await raw(api.url, 'GET', '/v1/orders', [buyer, ['content-type', 'application/json']], body);
      expect([listed.status, JSON.parse(listed.text)], body.slice(0, 10)).toEqual([200, plain]);
    }
  });

  it('took no stock and queued no order for any refused request', async () => {
    // the setup's order (1), the whole surrogate pair's (1), the UTF-8 and ASCII ones (3), the identity checkout (2) and the 100-continue one (1)
    expect((await api.request('GET', '/v1/admin/skus/MUG', { token: api.token('ops', 'admin') })).body.stock).toEqual({ available: 2, reserved: 8, sold: 0 });
    expect(await api.deps.queues.orders.count()).toBe(7);
  });
});
