/**
 * The whole life of an order, as buyers and the simulators live it: checkout, wait until
 * the worker has written it (PENDING_PAYMENT), pay (the payment simulator calls back:
 * PAID), let the warehouse simulator pick, pack, ship and deliver it, confirm receipt.
 * With WAREHOUSE_SIM_STEP_MS=0 the simulator stands still and this script sends the
 * warehouse's PICKED, PACKED and SHIPPED itself (DRIVE_WAREHOUSE=1), once the order is
 * IN_FULFILLMENT; the buyer's confirmation of receipt then delivers it (SHIPPED → DELIVERED).
 * Buyers and idempotency keys carry the run's id: a run within a day of another one
 * (IDEMPOTENCY_TTL_MS) reuses neither. The SKU is the run's own (LIFECYCLE_SKU names it;
 * one that exists already stops the run in setup).
 *
 * Passes when: at least 99% of orders reach the end within LIFE_TIMEOUT_S (orders started
 * near the end of DURATION too: k6 lets them run that long), every order planned was
 * started, no answer is outside the contract, and p99 of every buyer request stays under
 * 250 ms.
 *
 *   k6 run k6/order-lifecycle.ts
 *   docker compose --profile load run --rm k6 run /k6/order-lifecycle.ts
 */
import { sleep } from 'k6';
import exec from 'k6/execution';
import { type Options } from 'k6/options';
import { Rate, Trend } from 'k6/metrics';
import {
  checkout,
  confirmReceipt,
  createSku,
  dnsOverReplicas,
  envNumber,
  expectStatus,
  getOrder,
  pay,
  warehouseCallback,
} from './lib/shop.ts';

const RATE = envNumber('RATE', 20);
const LIFE_TIMEOUT_S = envNumber('LIFE_TIMEOUT_S', 60);
const DRIVE_WAREHOUSE = __ENV.DRIVE_WAREHOUSE === '1';
const SKU = __ENV.LIFECYCLE_SKU ?? `LIFE-${Date.now()}`;
/** The longest an iteration runs: an order's life, and the requests under way at its deadline. */
const LONGEST_LIFE_S = LIFE_TIMEOUT_S + 10;
/** As many orders as can be alive at once: RATE new ones a second, each living at most LONGEST_LIFE_S. */
const MAX_VUS = Math.ceil(RATE * LONGEST_LIFE_S);

const livedFully = new Rate('orders_lived_fully');
const timeToPaid = new Trend('order_time_to_paid', true);
const timeToDelivered = new Trend('order_time_to_delivered', true);

export const options: Options = {
  dns: dnsOverReplicas,
  scenarios: {
    buyers: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION ?? '2m',
      preAllocatedVUs: Math.min(Math.ceil(RATE * 20), MAX_VUS), // each VU waits out a whole order life
      maxVUs: MAX_VUS,
      // orders started near the end live out their time, and count as failed if they miss it, rather than vanish
      gracefulStop: `${LONGEST_LIFE_S}s`,
    },
  },
  thresholds: {
    orders_lived_fully: ['rate>0.99'],
    // an order never started (no free VU) counts neither way
    dropped_iterations: ['count==0'],
    unexpected_statuses: ['count==0'],
    'http_req_duration{name:checkout}': ['p(99)<250'],
    'http_req_duration{name:pay}': ['p(99)<250'],
    'http_req_duration{name:get-order}': ['p(99)<250'],
    order_time_to_paid: ['p(95)<5000'],
  },
};

interface Run {
  skuId: string;
  /** tells this run's buyers and idempotency keys from an earlier run's */
  runId: string;
}

export function setup(): Run {
  createSku({ skuId: SKU, stock: 1_000_000, priceCents: 2_500, deduction: 'payment' });
  return { skuId: SKU, runId: Date.now().toString(36) };
}

/** Polls the order until its status is one of `wanted`; null once the deadline has passed. */
function waitForStatus(buyer: string, orderId: string, wanted: string[], deadline: number): string | null {
  while (Date.now() < deadline) {
    const response = getOrder(buyer, orderId);
    expectStatus(response, 'get-order', [200]);
    const status = response.status === 200 ? String(response.json('status')) : '';
    if (wanted.includes(status)) return status;
    sleep(0.25);
  }
  return null;
}

/** Sends a warehouse event until it is taken: a 409 is a step the order has not reached yet, which the warehouse retries. */
function sendWarehouseEvent(orderId: string, event: 'PICKED' | 'PACKED' | 'SHIPPED', deadline: number): boolean {
  while (Date.now() < deadline) {
    const response = warehouseCallback(orderId, event);
    if (response.status !== 409) return expectStatus(response, 'warehouse-callback', [200]);
    sleep(0.25);
  }
  return false;
}

export default function liveAnOrder({ skuId, runId }: Run): void {
  const buyer = `life-${runId}-${exec.scenario.iterationInTest}`;
  const started = Date.now();
  const deadline = started + LIFE_TIMEOUT_S * 1000;

  const accepted = checkout(buyer, skuId, `life-${buyer}`);
  if (!expectStatus(accepted, 'checkout', [202])) return void livedFully.add(false);
  const orderId = String(accepted.json('orderId'));

  if (waitForStatus(buyer, orderId, ['PENDING_PAYMENT'], deadline) === null) return void livedFully.add(false);
  if (!expectStatus(pay(buyer, orderId), 'pay', [202])) return void livedFully.add(false);
  if (waitForStatus(buyer, orderId, ['PAID', 'IN_FULFILLMENT', 'SHIPPED', 'DELIVERED'], deadline) === null) return void livedFully.add(false);
  timeToPaid.add(Date.now() - started);

  if (DRIVE_WAREHOUSE) {
    // a warehouse reports on orders handed over to it: an event for one still PAID would be taken too,
    // but through the repair that records a hand-over its own step lost, not the path of every order
    if (waitForStatus(buyer, orderId, ['IN_FULFILLMENT', 'SHIPPED', 'DELIVERED'], deadline) === null) return void livedFully.add(false);
    for (const event of ['PICKED', 'PACKED', 'SHIPPED'] as const) {
      if (!sendWarehouseEvent(orderId, event, deadline)) return void livedFully.add(false);
    }
  } else if (waitForStatus(buyer, orderId, ['DELIVERED', 'COMPLETED'], deadline) === null) return void livedFully.add(false);

  // driven, the buyer signs for a parcel the carrier has not reported delivered: this is what delivers it;
  // the simulator's carrier reported it already, and signing again is a repeat. 200 either way
  if (!expectStatus(confirmReceipt(buyer, orderId), 'confirm-receipt', [200])) return void livedFully.add(false);
  const delivered = waitForStatus(buyer, orderId, ['DELIVERED', 'COMPLETED'], deadline) !== null;
  if (delivered) timeToDelivered.add(Date.now() - started);
  livedFully.add(delivered);
}
