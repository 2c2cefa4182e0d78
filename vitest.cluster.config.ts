import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The checkout and order-lifecycle tests again, against a 3-master Redis Cluster that
 * vitest.cluster.setup.ts starts on loopback ports: every key a script or a BullMQ
 * queue touches must sit in its hash tag's slot, or these fail with CROSSSLOT.
 * Tests that need one Redis by nature (a restarted redis-server, the Lua scripts' own
 * tests on a plain connection) stay in the single-Redis run only, as do those whose keys and
 * scripts files here cover already (a return restocks as a paid cancel does; a killed worker's
 * job and a breaker's retries run the same jobs again), to keep the suite within its 10 minutes.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'apps/api/test/flash-sale-checkout.test.ts',
      'apps/api/test/flash-sale-changes.test.ts',
      'apps/api/test/bad-input.test.ts',
      'apps/api/test/pricing-admin.test.ts',
      'apps/api/test/merchant-actions.test.ts',
      'apps/api/test/order-import.test.ts',
      'apps/worker/test/order-life.test.ts',
      'apps/worker/test/order-types-life.test.ts',
      'apps/worker/test/reverse-flows.test.ts',
      'apps/worker/test/payment-time-deduction.test.ts',
      'apps/worker/test/stranded-orders.test.ts',
      'apps/worker/test/coupon-expiry.test.ts',
      'apps/worker/test/coupon-total-limit.test.ts',
      'apps/worker/test/payment-deadline.test.ts',
      'apps/worker/test/address-change.test.ts',
      'apps/worker/test/stock-buckets.test.ts',
      'apps/worker/test/buyer-rules-across-buckets.test.ts',
      'apps/worker/test/refunds-across-payments.test.ts',
      'apps/worker/test/batched-persist-jobs.test.ts',
      'libs/testing/test/redis-cluster.test.ts',
    ],
    globalSetup: ['./vitest.cluster.setup.ts'],
  },
});
