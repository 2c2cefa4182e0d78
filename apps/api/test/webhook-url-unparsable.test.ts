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

  it('refuses port 99999, host 256.1.1.1 or a %00 in the host with 400 VALIDATION_FAILED naming body/url, not 500, registering nothing', async () => {
    for (const url of ['http://crm.example.com:99999/orders', 'http://256.1.1.1/orders', 'http://crm%00.example.com/orders']) {
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
});
