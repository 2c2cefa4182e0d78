import { JOB, createOrderQueues } from '@orders/queues';
import { createTestEnv, startRedisCluster, type RedisCluster, type TestEnv } from '@orders/testing';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** How many keys under `pattern` each node holds, asked of each node directly. */
async function keysPerNode(nodes: string, pattern: string): Promise<number[]> {
  return Promise.all(
    nodes.split(',').map(async (node) => {
      const redis = new Redis(`redis://${node}`);
      try {
        return (await redis.keys(pattern)).length;
      } finally {
        redis.disconnect();
      }
    }),
  );
}

describe('a test file on a 3-master Redis Cluster of its own', () => {
  let cluster: RedisCluster;
  let env: TestEnv;
  let cleanedUp = false;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    env = await createTestEnv('cluster', { REDIS_CLUSTER_NODES: cluster.nodes });
  });

  afterAll(async () => {
    if (!cleanedUp) await env?.cleanup();
    await cluster?.stop();
  });

  it('keeps each queue in one slot and leaves no key behind on any master', async () => {
    expect(env.redis).toBeInstanceOf(Cluster);
    expect(env.config.QUEUE_PREFIX).toMatch(/^\{tq_\d+_cluster_[0-9a-f]+\}$/);
    const queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: 1, backoffMs: 10 });
    await queues.timers.add(JOB.expireOrder, { orderId: 'O-1', userId: 'alice' }, { delay: 60_000 });
    expect(await queues.timers.getJobCounts('delayed')).toEqual({ delayed: 1 });
    await queues.close();
    // 60 untagged keys land on every master, not only on one
    for (let i = 0; i < 60; i += 1) await env.redis.set(`${env.config.REDIS_KEY_PREFIX}key-${i}`, String(i));
    const spread = await keysPerNode(cluster.nodes, `${env.config.REDIS_KEY_PREFIX}*`);
    expect(spread.filter((count) => count > 0)).toHaveLength(3);

    await env.cleanup();
    cleanedUp = true;

    expect(await keysPerNode(cluster.nodes, `${env.config.REDIS_KEY_PREFIX}*`)).toEqual([0, 0, 0]);
    expect(await keysPerNode(cluster.nodes, `${env.config.QUEUE_PREFIX}:*`)).toEqual([0, 0, 0]);
  });
});

describe.runIf(process.env.TEST_REDIS_CLUSTER_NODES)('the redis-cluster project (vitest.config.ts)', () => {
  it('gives every test file the cluster, with hash-tagged queues', async () => {
    const env = await createTestEnv('cluster run');
    try {
      expect(env.redis).toBeInstanceOf(Cluster);
      expect(env.env.REDIS_CLUSTER_NODES).toBe(process.env.TEST_REDIS_CLUSTER_NODES);
      expect(env.config.QUEUE_PREFIX).toMatch(/^\{.+\}$/);
    } finally {
      await env.cleanup();
    }
  });
});
