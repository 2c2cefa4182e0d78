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
    for (const url of ['http://crm.example.com:99999/orders', 'http://crm.example.com:0/orders', 'http://256.1.1.1/orders', 'http://crm%00.example.com/orders']) {
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
  });
});
