import { startRedisCluster } from '@orders/testing';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** the cluster's masters, as REDIS_CLUSTER_NODES takes them */
    redisClusterNodes: string;
  }
}

/** Starts the 3-master Redis Cluster the redis-cluster project's files run against (vitest.cluster.env.ts), and stops it after them. */
export default async function redisClusterForTheRun(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startRedisCluster(3);
  project.provide('redisClusterNodes', cluster.nodes);
  return () => cluster.stop();
}
