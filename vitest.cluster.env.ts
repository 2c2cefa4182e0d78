import { inject } from 'vitest';
// its ProvidedContext names what the setup provides
import type {} from './vitest.cluster.setup.js';

// createTestEnv reads the cluster from here: set in each process serving the redis-cluster project, which serves no other
process.env.TEST_REDIS_CLUSTER_NODES = inject('redisClusterNodes');
