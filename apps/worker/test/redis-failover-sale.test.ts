import { loadConfig } from '@orders/config';
import { connectRedis } from '@orders/stock';
import {
  createTestEnv,
  runOperatorCommand,
  settledSaleInvariants,
  signToken,
  spawnApp,
  startApiProcess,
  startReplicatedRedis,
  waitFor,
  type ApiProcess,
  type ReplicatedRedis,
  type SpawnedProcess,
  type TestEnv,
} from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuyerCrowd, STOCK, allAcceptedInMysql, createFlashSku, processSettings, saleReport } from './support/flash-sale-crowd.js';

describe('a flash sale whose Redis master is killed and its replica promoted (RESERVATION_REPLICA_ACKS=1)', () => {
  let redis: ReplicatedRedis;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    redis = await startReplicatedRedis();
    env = await createTestEnv('redis_failover_sale', { REDIS_URL: redis.master.url, ...processSettings });
    api = await startApiProcess(env.env, 60);
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
  });

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    // the old master, back as a replica, takes the key scan once it is a master again
    const old = new Redis(redis.master.url, { maxRetriesPerRequest: null });
    await old.call('REPLICAOF', 'NO', 'ONE').catch(() => undefined);
    old.disconnect();
    await env?.cleanup();
    await redis?.remove();
  });

  it('sells the stock once, keeps every order it answered 202 for and every buyer within the limit', { timeout: 120_000 }, async () => {
    await createFlashSku(api, signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' }));
    const buyers = new BuyerCrowd(env, () => api, true);
    const sale = buyers.run();

    await waitFor(async () => buyers.accepted.length >= 80, { what: '80 checkouts accepted before the failover', intervalMs: 10 });
    await redis.master.kill();
    await redis.replicaClient.call('REPLICAOF', 'NO', 'ONE');
    // the old master comes back as a replica of the new one: with RESERVATION_REPLICA_ACKS=1 the new master takes no checkout without one
    await redis.master.start();
    const oldMaster = new Redis(redis.master.url, { maxRetriesPerRequest: null });
    await oldMaster.call('REPLICAOF', '127.0.0.1', String(redis.replica.port));
    oldMaster.disconnect();

    const promoted = { ...env.env, REDIS_URL: redis.replica.url };
    await worker.kill();
    const oldApi = api;
    api = await startApiProcess(promoted, 60);
    await oldApi.close();
    worker = spawnApp('worker', { ...promoted, WORKER_METRICS_PORT: '0' });
    const repair = await runOperatorCommand('reconcile', ['--repair'], promoted);
    expect(repair.exitCode, repair.output).toBe(0);

    await sale;
    await allAcceptedInMysql(env, buyers);
    expect(await saleReport(env, buyers), buyers.summary()).toMatchObject({ accepted: STOCK, unitsSold: STOCK, lost: [], neverAnswered202: [], buyersPastLimit: [] });

    const promotedRedis = connectRedis(loadConfig(promoted), { maxRetriesPerRequest: null });
    try {
      const invariants = await settledSaleInvariants({ db: env.db, redis: promotedRedis, keyPrefix: env.config.REDIS_KEY_PREFIX, acceptedOrderIds: buyers.accepted.map((order) => order.orderId), initialStock: { FLASH: STOCK }, paymentWaitMs: env.config.PAYMENT_TIMEOUT_MS });
      expect(invariants.violations).toEqual([]);
      expect(invariants.stock.FLASH!.redis).toEqual({ available: 0, reserved: STOCK, sold: 0 });
    } finally {
      promotedRedis.disconnect();
    }
  });
});
