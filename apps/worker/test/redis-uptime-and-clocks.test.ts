import { createMetrics } from '@orders/metrics';
import { redisMastersReplicationIdOf, redisReplicasOf, redisUptimeOf } from '@orders/stock';
import { createTestEnv, freePort, startReplicatedRedis, waitFor, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { Cluster, Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What RedisRestarted, RedisMasterChanged, RedisReplicaLost, RedisReplicaLagging and ClocksApart read, as a worker exports it: here Redis and MySQL share this host's clock. */
describe("Redis's uptime, its master's replication ID and replicas, and its clock against MySQL's, as the workers export them", () => {
  let env: TestEnv;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('redis_uptime_and_clocks');
    workers = startWorkers(connectWorker({ ...env.config, WORKER_QUEUES: ['orders'] }, pino({ level: 'silent' })));
  });
  afterAll(async () => {
    await workers?.close();
    await env?.cleanup();
  });

  const sample = (exposition: string, name: string) => Number(new RegExp(`^${name}\\{app="worker"\\} (\\S+)$`, 'm').exec(exposition)?.[1]);

  it("exports Redis's uptime as INFO says it, and the two clocks (this host's one) a few milliseconds apart at most", async () => {
    const exposition = await workers.deps.metrics.exposition();
    const info = Number(/^uptime_in_seconds:(\d+)/m.exec(await env.redis.info('server'))?.[1]);
    expect(Math.abs(sample(exposition, 'redis_uptime_seconds') - info)).toBeLessThanOrEqual(2);
    expect(Math.abs(sample(exposition, 'clock_offset_seconds'))).toBeLessThan(0.05);
    expect(sample(exposition, 'redis_master_replication_id')).toBe(await redisMastersReplicationIdOf(env.redis));
    // the tests' Redis runs without replicas
    expect([sample(exposition, 'redis_replicas_connected'), sample(exposition, 'redis_replica_lag_seconds')]).toEqual([0, 0]);
  });

  it('reads the replica a master has connected, and none once it stopped', async () => {
    const redis = await startReplicatedRedis();
    const master = new Redis(redis.master.url);
    master.on('error', () => {});
    try {
      const replicas = await redisReplicasOf(master);
      expect(replicas.connected).toBe(1);
      expect(replicas.lagSeconds).toBeLessThanOrEqual(2);
      await redis.replica.stop();
      await waitFor(async () => (await redisReplicasOf(master)).connected === 0, { what: 'the master to see its replica gone' });
    } finally {
      master.disconnect();
      await redis.remove();
    }
  });

  it('exports no replica count, uptime or replication ID while a Redis Cluster has no master it reached: figures of no master would hold RedisReplicaLost for a day, or page RedisMasterChanged', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: await freePort() }], { clusterRetryStrategy: () => 100 });
    cluster.on('error', () => {});
    try {
      const metrics = createMetrics({ app: 'worker' });
      metrics.watchRedisReplicas(async () => redisReplicasOf(cluster));
      metrics.watchRedisUptime(async () => redisUptimeOf(cluster));
      metrics.watchRedisReplicationId(async () => redisMastersReplicationIdOf(cluster));
      expect(await metrics.exposition()).not.toMatch(/^(redis_replicas_connected|redis_uptime_seconds|redis_master_replication_id)\{/m);
    } finally {
      cluster.disconnect();
    }
  });

  it('reads another replication ID from the replica a failover promoted, though it has run as long as its master', async () => {
    const redis = await startReplicatedRedis();
    const master = new Redis(redis.master.url);
    master.on('error', () => {});
    try {
      const before = await redisMastersReplicationIdOf(master);
      await redis.master.stop();
      await redis.replicaClient.call('REPLICAOF', 'NO', 'ONE');

      expect(await redisMastersReplicationIdOf(redis.replicaClient)).not.toBe(before);
    } finally {
      master.disconnect();
      await redis.remove();
    }
  });
});
