/**
 * An ordinary day for hours: a steady mix of buyers listing their orders (70%), looking
 * at one (15%) and checking out (15%) at RATE requests per second for DURATION.
 * What it finds is what only time shows: memory or handle leaks, a growing queue,
 * latency creeping up. Watch the "Order pipeline" dashboard's process panels alongside.
 * Buyers and idempotency keys carry the run's id: a run within a day of another one
 * (IDEMPOTENCY_TTL_MS) reuses neither. The SKU is the run's own (SOAK_SKU names it; one
 * that exists already stops the run in setup).
 *
 * Passes when: p99 of every route stays under 250 ms for the whole run, fewer than 0.1%
 * of requests fail, and no answer is outside the contract.
 *
 *   DURATION=4h k6 run k6/soak.ts
 *   docker compose --profile load run --rm -e DURATION=4h k6 run /k6/soak.ts
 */
import exec from 'k6/execution';
import { type Options } from 'k6/options';
import { checkout, createSku, dnsOverReplicas, envNumber, expectStatus, getOrder, listOrders } from './lib/shop.ts';

const RATE = envNumber('RATE', 200);
const BUYERS = envNumber('BUYERS', 5_000);
const SKU = __ENV.SOAK_SKU ?? `SOAK-${Date.now()}`;

export const options: Options = {
  dns: dnsOverReplicas,
  scenarios: {
    a_day_of_shopping: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION ?? '30m',
      preAllocatedVUs: Math.ceil(RATE / 4),
      maxVUs: RATE * 2,
    },
  },
  thresholds: {
    http_req_duration: ['p(99)<250'],
    'http_req_duration{name:checkout}': ['p(99)<250'],
    'http_req_duration{name:list-orders}': ['p(99)<250'],
    http_req_failed: ['rate<0.001'],
    unexpected_statuses: ['count==0'],
  },
};

interface Run {
  skuId: string;
  /** tells this run's buyers and idempotency keys from an earlier run's */
  runId: string;
}

export function setup(): Run {
  createSku({ skuId: SKU, stock: 100_000_000, priceCents: 1_999, deduction: 'payment' });
  return { skuId: SKU, runId: Date.now().toString(36) };
}

/** Each buyer's last order, so "look at one" looks at a real one (per VU: VUs share nothing). */
const lastOrderOf = new Map<string, string>();

export default function shop({ skuId, runId }: Run): void {
  const iteration = exec.scenario.iterationInTest;
  const buyer = `soak-${runId}-${iteration % BUYERS}`;
  // not iteration % 100: with BUYERS a multiple of 100 a buyer's roll would always be the same, and
  // the buyers who roll "look at my order" would never be the ones who ordered
  const dice = Math.floor(Math.random() * 100);
  if (dice < 15) {
    const response = checkout(buyer, skuId, `soak-${runId}-${iteration}`);
    if (expectStatus(response, 'checkout', [202])) lastOrderOf.set(buyer, String(response.json('orderId')));
  } else if (dice < 30 && lastOrderOf.has(buyer)) {
    // a fresh order may still be in the queue: ACCEPTED is an answer, never a 404
    expectStatus(getOrder(buyer, lastOrderOf.get(buyer)!), 'get-order', [200]);
  } else {
    expectStatus(listOrders(buyer), 'list-orders', [200]);
  }
}
