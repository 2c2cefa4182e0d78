/**
 * The whole life of an order, as buyers and the simulators live it: checkout, wait until
 * the worker has written it (PENDING_PAYMENT), pay (the payment simulator calls back:
 * PAID), let the warehouse simulator pick, pack, ship and deliver it, confirm receipt.
 * With WAREHOUSE_SIM_STEP_MS=0 the simulator stands still and this script sends the
 * warehouse callbacks itself (DRIVE_WAREHOUSE=1), once the order is IN_FULFILLMENT.
 * Buyers and idempotency keys carry the run's id: a run within a day of another one
 * (IDEMPOTENCY_TTL_MS) reuses neither.
 *
 * Passes when: at least 99% of orders reach the end within LIFE_TIMEOUT_S, no answer is
 * outside the contract, and p99 of every buyer request stays under 250 ms.
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
      preAllocatedVUs: RATE * 20, // each VU waits out a whole order life
      maxVUs: RATE * 60,
    },
  },
  thresholds: {
    orders_lived_fully: ['rate>0.99'],
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

/**
 * Sends a warehouse event until it is taken. 409: the order has not reached that step yet
 * (our own hand-over, or the previous event, still on its way), and the warehouse retries.
 */
function sendWarehouseEvent(orderId: string, event: 'PICKED' | 'PACKED' | 'SHIPPED' | 'DELIVERED', deadline: number): boolean {
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
    // the warehouse takes events once the order is handed over to it (IN_FULFILLMENT), not at PAID
    if (waitForStatus(buyer, orderId, ['IN_FULFILLMENT', 'SHIPPED', 'DELIVERED'], deadline) === null) return void livedFully.add(false);
    for (const event of ['PICKED', 'PACKED', 'SHIPPED', 'DELIVERED'] as const) {
      if (!sendWarehouseEvent(orderId, event, deadline)) return void livedFully.add(false);
    }
  }
  if (waitForStatus(buyer, orderId, ['DELIVERED', 'COMPLETED'], deadline) === null) return void livedFully.add(false);
  timeToDelivered.add(Date.now() - started);

  // the carrier reported it delivered already: signing for it again is a repeat, answered 200
  expectStatus(confirmReceipt(buyer, orderId), 'confirm-receipt', [200]);
  livedFully.add(waitForStatus(buyer, orderId, ['DELIVERED', 'COMPLETED'], deadline) !== null);
}
