import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('a webhook URL that the uri format takes and fetch cannot reach', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let admin: string;

  beforeAll(async () => {
    env = await createTestEnv('webhook_url_unparsable');
    api = await startApi(env);
    admin = api.token('ops', 'admin');
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('refuses port 99999 or 0, host 256.1.1.1 or a %00 in the host with 400 VALIDATION_FAILED naming body/url, not 500, registering nothing', async () => {
    const tooLong = `${`${'a'.repeat(60)}.`.repeat(5)}com`;
    for (const url of ['http://crm.example.com:99999/orders', 'http://crm.example.com:0/orders', 'http://256.1.1.1/orders', 'http://crm%00.example.com/orders', `https://${tooLong}/orders`, `https://${'a'.repeat(64)}.example.com/orders`]) {
      const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url } });
      expect([hook.status, hook.headers['content-type'], hook.body.code, hook.body.detail], url).toEqual([
        400,
        expect.stringContaining('application/problem+json'),
        'VALIDATION_FAILED',
        expect.stringMatching(/^body\/url: /),
      ]);
    }
    expect((await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items).toEqual([]);
    // a URL fetch can reach is still taken
    expect((await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'http://crm.example.com:8443/orders' } })).status).toBe(201);
  });

  it('refuses a URL naming no host (http:///orders), which the uri format takes and fetch sends to the host its path begins with', async () => {
    for (const url of ['http:///orders/events', 'https:////crm.example.com/orders']) {
      const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url } });
      expect([url, hook.status, hook.headers['content-type'], hook.body.code, hook.body.detail]).toEqual([
        url,
        400,
        expect.stringContaining('application/problem+json'),
        'VALIDATION_FAILED',
        expect.stringMatching(/^body\/url: names no host/),
      ]);
    }
    const hooks = (await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items as Array<{ url: string }>;
    expect(hooks.filter((hook) => hook.url.includes(':///'))).toEqual([]);
  });

  it("refuses, where WEBHOOK_PRIVATE_RECEIVERS is false (production), a receiver on the shop's own networks, which the workers' signed POSTs would reach from inside", async () => {
    const production = await startApi({ ...env, config: { ...env.config, WEBHOOK_PRIVATE_RECEIVERS: false } });
    try {
      for (const url of [
        'http://169.254.169.254/latest/meta-data/',
        'http://127.0.0.1:9464/metrics',
        'http://localhost:3000/v1/admin/orders',
        'http://[::1]:6379/',
        'http://[::ffff:10.0.0.5]/',
        'http://10.0.0.5/',
        'http://172.20.1.1/',
        'http://192.168.1.1/',
        'http://0.0.0.0:3306/',
        // through an IPv6/IPv4 translation gateway (NAT64 on an IPv6-only subnet, 6to4): the IPv4 address it carries
        'http://[64:ff9b::a00:5]:3306/',
        'http://[64:ff9b::169.254.169.254]/latest/meta-data/',
        'http://[2002:c0a8:101::1]/',
        'http://[64:ff9b:1::a]/',
      ]) {
        const hook = await production.request('POST', '/v1/admin/webhooks', { token: admin, body: { url } });
        expect([url, hook.status, hook.body.code, hook.body.detail]).toEqual([url, 400, 'VALIDATION_FAILED', expect.stringMatching(/^body\/url: its host .* an address of the shop's own networks/)]);
      }
      const unknown = await production.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'http://crm.invalid/orders' } });
      expect([unknown.status, unknown.body.detail]).toEqual([400, 'body/url: its host crm.invalid resolves to no address a delivery could be sent to']);
      // a receiver outside them is taken, through a NAT64 gateway too
      expect((await production.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'https://203.0.113.10/orders' } })).status).toBe(201);
      expect((await production.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'https://[64:ff9b::cb00:710b]/orders' } })).status).toBe(201);
    } finally {
      await production.close();
    }
    const hooks = (await api.request('GET', '/v1/admin/webhooks', { token: admin })).body.items as Array<{ url: string; webhookId: string }>;
    expect(hooks.map((hook) => hook.url)).toContain('https://203.0.113.10/orders');
    for (const hook of hooks.filter((hook) => hook.url.startsWith('https://203.') || hook.url.startsWith('https://[64:ff9b'))) await api.request('DELETE', `/v1/admin/webhooks/${hook.webhookId}`, { token: admin });
  });

  it("keeps a removed webhook's delivery log readable, as its DELETE says", async () => {
    const hook = await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'http://crm.example.com/removed' } });
    const webhookId = hook.body.webhookId as string;
    await env.db
      .insertInto('webhook_deliveries')
      .values({ webhook_id: webhookId, first_event_id: 1, last_event_id: 3, event_count: 3, attempt: 4, outcome: 'failed', status_code: 410, error: 'the receiver answered 410', duration_ms: 12, at: new Date() })
      .execute();
    expect((await api.request('DELETE', `/v1/admin/webhooks/${webhookId}`, { token: admin })).status).toBe(204);
    const log = await api.request('GET', `/v1/admin/webhooks/${webhookId}/deliveries`, { token: admin });
    expect([log.status, log.body.items.map((d: { statusCode: number }) => d.statusCode)]).toEqual([200, [410]]);
    expect((await api.request('GET', '/v1/admin/webhooks/01JZZZZZZZZZZZZZZZZZZZZZZZ/deliveries', { token: admin })).status).toBe(404);
    // an older page of it is empty; of an id never registered, with or without a page asked, there is none
    const older = await api.request('GET', `/v1/admin/webhooks/${webhookId}/deliveries?before=1`, { token: admin });
    expect([older.status, older.body.items]).toEqual([200, []]);
    const unknown = await api.request('GET', '/v1/admin/webhooks/01JZZZZZZZZZZZZZZZZZZZZZZZ/deliveries?before=1000', { token: admin });
    expect([unknown.status, unknown.body.code]).toEqual([404, 'NOT_FOUND']);
  });
});
