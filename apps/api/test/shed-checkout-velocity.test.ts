import { buyerAddress, createSku, createTestEnv, spawnApp, waitFor, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('a checkout the intake sheds (503 OVERLOADED) and the buyer retries as told (2 checkouts a minute per buyer)', () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  let worker: SpawnedProcess | undefined;

  beforeAll(async () => {
    // no worker runs at first: two accepted orders waiting for MySQL make the intake shed
    env = await createTestEnv('shed_checkout_velocity', { QUEUE_HIGH_WATER_MARK: '2', RISK_VELOCITY_MAX_CHECKOUTS: '2', RISK_VELOCITY_WINDOW_MS: '60000' });
    api = await startApi(env);
    await createSku(api, api.token('ops', 'admin'), { skuId: 'MUG', title: 'Mug', priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.close();
    await env?.cleanup();
  });

  const checkout = (buyer: string, key: string) =>
    api.request('POST', '/v1/orders', { token: api.token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'MUG', qty: 1 }], address: buyerAddress } });

  it('takes the retried checkout once the backlog is worked off: the shed requests spent the request budget, not checkout attempts', async () => {
    expect((await checkout('sale-buyer', 'mug-first')).status).toBe(202);
    expect((await checkout('other-buyer', 'mug-other')).status).toBe(202);
    // the api samples the backlog every 250 ms: another buyer's new keys find when it sheds
    let probe = 0;
    await waitFor(async () => (await checkout('probing-buyer', `probe-${probe++}`)).status === 503, { what: 'the intake to shed checkouts' });
    for (let attempt = 0; attempt < 4; attempt++) {
      const shed = await checkout('sale-buyer', 'mug-second');
      expect([shed.status, shed.body.code]).toEqual([503, 'OVERLOADED']);
    }

    // the workers catch up
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
    const taken = await waitFor(async () => {
      const answer = await checkout('sale-buyer', 'mug-second');
      return answer.status === 503 ? null : answer;
    }, { what: 'the intake to take checkouts again' });
    expect([taken.status, taken.body.code]).toEqual([202, undefined]);
    // a third checkout in the minute is one too many (sent again while the intake sheds, as told: the
    // order just taken may count in its next sample of the backlog until the worker has written it)
    const third = await waitFor(async () => {
      const answer = await checkout('sale-buyer', 'mug-third');
      return answer.status === 503 ? null : answer;
    }, { what: 'the third checkout taken on' });
    expect(third.body.code).toBe('RISK_REJECTED');
  });
});
