import {
  createTestEnv,
  runOperatorCommand,
  signToken,
  spawnApp,
  startApiProcess,
  startRedisServer,
  startTcpProxy,
  waitFor,
  type ApiProcess,
  type RedisServer,
  type SpawnedProcess,
  type TcpProxy,
  type TestEnv,
} from '@orders/testing';
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuyerCrowd, STOCK, allAcceptedInMysql, createFlashSku, processSettings, saleReport } from './support/flash-sale-crowd.js';

const persistedOrders = async (env: TestEnv) => Number((await env.db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).where('parent_order_id', 'is', null).executeTakeFirstOrThrow()).n);

describe('a flash sale whose Redis master is killed while its replica is behind, and the replica promoted (RESERVATION_REPLICA_ACKS=1)', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let link: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    master = await startRedisServer();
    // the replica reaches its master through a link the test can freeze: the replica falls behind
    link = await startTcpProxy({ host: '127.0.0.1', port: master.port });
    replica = await startRedisServer(['--replicaof', '127.0.0.1', String(link.port)]);
    const masterClient = new Redis(master.url);
    const replicaClient = new Redis(replica.url);
    await waitFor(async () => /master_link_status:up/.test(await replicaClient.info('replication')) && (await masterClient.set('probe', '1', 'PX', 1000)) === 'OK' && Number(await masterClient.call('WAIT', '1', '500')) >= 1, { what: 'the replica in sync' });
    masterClient.disconnect();
    replicaClient.disconnect();
    env = await createTestEnv('redis_failover_behind', { REDIS_URL: master.url, ...processSettings, RESERVATION_REPLICA_TIMEOUT_MS: '200' });
    api = await startApiProcess(env.env, 60);
    worker = spawnApp('worker', { ...env.env, WORKER_METRICS_PORT: '0' });
  });

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    const old = new Redis(master.url, { maxRetriesPerRequest: null });
    await old.call('REPLICAOF', 'NO', 'ONE').catch(() => undefined);
    old.disconnect();
    await env?.cleanup();
    await link?.close();
    await replica?.remove();
    await master?.remove();
  });

  it('sells the stock once and keeps every buyer within the limit', { timeout: 120_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createFlashSku(api, admin);
    const buyers = new BuyerCrowd(env, () => api, false);
    const sale = buyers.run();

    await waitFor(async () => buyers.accepted.length >= 60, { what: '60 checkouts accepted before the replica falls behind', intervalMs: 10 });
    link.freeze();
    // checkouts answered 503 meanwhile: their reservations stand on the master alone; the stranded-order sweep
    // (STRANDED_ORDER_AFTER_MS 3 s, every second) looks at them for a few rounds before the master dies
    await waitFor(async () => buyers.answered(503) >= 20, { what: '20 checkouts answered 503', timeoutMs: 20_000, intervalMs: 50 });
    await sleep(6_000);
    const acceptedBeforeFailover = buyers.accepted.length;
    const inMysqlBeforeFailover = await persistedOrders(env);
    await master.kill();
    await link.close();
    const promotedClient = new Redis(replica.url, { maxRetriesPerRequest: null });
    await promotedClient.call('REPLICAOF', 'NO', 'ONE');
    await master.start();
    const oldMaster = new Redis(master.url, { maxRetriesPerRequest: null });
    await oldMaster.call('REPLICAOF', '127.0.0.1', String(replica.port));
    oldMaster.disconnect();
    promotedClient.disconnect();

    const promoted = { ...env.env, REDIS_URL: replica.url };
    await worker.kill();
    const oldApi = api;
    api = await startApiProcess(promoted, 60);
    await oldApi.close();
    worker = spawnApp('worker', { ...promoted, WORKER_METRICS_PORT: '0' });
    // the operator repairs once RedisMasterChanged fires; the buyers told 503 have retried by then
    await waitFor(async () => buyers.accepted.length >= acceptedBeforeFailover + 40, { what: '40 checkouts accepted by the promoted replica', intervalMs: 10 });
    const repair = await runOperatorCommand('reconcile', ['--repair'], promoted);

    await sale;
    await allAcceptedInMysql(env, buyers);
    const report = await saleReport(env, buyers);
    // the shop's checks first, then the operator's: what the repair said, how it ended
    expect({ ...report, repairExitCode: repair.exitCode }, `${buyers.summary()}; ${acceptedBeforeFailover} answered 202 and ${inMysqlBeforeFailover} in MySQL at the failover; the repair printed:\n${repair.output}`).toMatchObject({
      unitsSold: STOCK,
      lost: [],
      neverAnswered202: [],
      buyersPastLimit: [],
      repairExitCode: 0,
    });
  });
});
