import { loadConfig } from '@orders/config';
import { createDb, migrateToLatest } from '@orders/persistence';
import { createSku, createTestEnv, startMysqlServer, type MysqlServer, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

/**
 * A shop's MySQL run in its own zone (a Tokyo host's, +09:00), as many are: the times MySQL
 * stamps itself (NOW(3), the columns' CURRENT_TIMESTAMP(3) defaults) were in that zone and read
 * back as UTC, nine hours ahead (clocks review). Every connection now sets its session to UTC.
 */
describe("a shop whose MySQL runs in Tokyo's zone (+09:00)", () => {
  let env: TestEnv;
  let tokyo: MysqlServer;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('mysql_in_local_zone');
    tokyo = await startMysqlServer({ timeZone: '+09:00' });
    const { db } = createDb(tokyo.url, 1);
    await migrateToLatest(db);
    await db.destroy();
    api = await startApi({ ...env, config: loadConfig({ ...env.env, MYSQL_URL: tokyo.url }) });
    await createSku(api, api.token('ops', 'admin'), { skuId: 'LAMP', title: 'Lamp', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await api?.close();
    await tokyo?.remove();
    await env?.cleanup();
  });

  it('says a SKU taken off sale is off sale since now, not nine hours from now', async () => {
    const before = Date.now();
    const answer = await api.request('PUT', '/v1/admin/skus/LAMP/on-sale', { token: api.token('ops', 'admin'), body: { onSale: false } });
    const after = Date.now();
    expect([answer.status, answer.body.onSale]).toEqual([200, false]);
    const since = Date.parse(answer.body.offSaleSince);
    expect(since, answer.body.offSaleSince).toBeGreaterThanOrEqual(before - 1_000);
    expect(since, answer.body.offSaleSince).toBeLessThanOrEqual(after + 1_000);
  });
});
