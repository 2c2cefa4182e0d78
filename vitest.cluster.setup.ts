import { startRedisCluster } from '@orders/testing';

/** Starts the 3-master Redis Cluster the test files run against (createTestEnv reads TEST_REDIS_CLUSTER_NODES), and stops it after them. */
export default async function redisClusterForTheRun(): Promise<() => Promise<void>> {
  const cluster = await startRedisCluster(3);
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.nodes;
  return async () => {
    delete process.env.TEST_REDIS_CLUSTER_NODES;
    await cluster.stop();
  };
}
