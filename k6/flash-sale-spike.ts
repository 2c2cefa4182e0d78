/**
 * A flash sale opens: arrivals ramp within seconds to PEAK_RATE checkouts per second, all
 * at one hot SKU with STOCK units and a per-buyer limit of 1. Every buyer is new, and so is
 * the SKU (HOT_SKU names it; one that exists already stops the run in setup).
 *
 * Passes when: accepted checkouts' p99 stays under 250 ms (p95 under 100 ms) at the peak,
 * and every answer's p99 under 250 ms; fewer than 1% of the buyers who come while units
 * remain are turned away by load shedding, rate limiting or errors; k6 sends every buyer it
 * was asked to (no dropped iterations); no answer is other than 202 accepted / 409 sold out /
 * 429 rate limited / 503 shed; no more checkouts are accepted than there are units; and
 * afterwards the SKU's units add up, it sold out if more buyers came than it had units, and
 * within 2 minutes every unit taken is an order in MySQL (nothing oversold, nothing lost).
 *
 *   k6 run k6/flash-sale-spike.ts                              (against npm start)
 *   docker compose --profile load run --rm k6 run /k6/flash-sale-spike.ts
 */
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { type Options } from 'k6/options';
import { Counter, Rate } from 'k6/metrics';
import { checkout, createSku, dnsOverReplicas, envNumber, expectStatus, persistedOrdersOf, skuStock } from './lib/shop.ts';

const PEAK_RATE = envNumber('PEAK_RATE', 3000);
const STOCK = envNumber('STOCK', 10_000);
const HOT_SKU = __ENV.HOT_SKU ?? `HOT-${Date.now()}`;
/** How long the worker may take, once the sale is over, to write the last accepted orders to MySQL. */
const PERSISTED_WITHIN_S = 120;
/** The share of buyers who came while units remained that may be turned away (shed, rate limited, errors). */
const TURNED_AWAY_AT_MOST = 0.01;

const START_RATE = Math.ceil(PEAK_RATE / 20);
const STAGES = [
  { target: PEAK_RATE, seconds: 10 }, // the sale opens: everyone arrives at once
  { target: PEAK_RATE, seconds: 50 }, // and keeps coming after the stock is gone
  { target: 0, seconds: 10 },
];
/** The buyers the scenario sends: the area under its arrival rate, which k6 ramps linearly within a stage. */
const BUYERS = STAGES.reduce((sum, { target, seconds }, i) => sum + (((STAGES[i - 1]?.target ?? START_RATE) + target) / 2) * seconds, 0);
/**
 * Whether the SKU must sell out. With no iteration dropped and at most TURNED_AWAY_AT_MOST of
 * the buyers turned away while units remain (both thresholds), this many reached the stock:
 * units still available afterwards were refused, 409 sold out, to buyers they were there for.
 */
const MUST_SELL_OUT = BUYERS * (1 - TURNED_AWAY_AT_MOST) >= STOCK;

const outcomes = new Counter('checkout_outcomes');
const turnedAwayInStock = new Rate('checkout_turned_away_in_stock');

// Sold out (409) is the sale working; shed (503) and rate limited (429) count as failed.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const options: Options = {
  dns: dnsOverReplicas,
  scenarios: {
    sale_opens: {
      executor: 'ramping-arrival-rate',
      startRate: START_RATE,
      timeUnit: '1s',
      preAllocatedVUs: Math.ceil(PEAK_RATE / 4),
      maxVUs: PEAK_RATE * 2,
      stages: STAGES.map(({ target, seconds }) => ({ target, duration: `${seconds}s` })),
    },
  },
  // the wait for MySQL to hold every accepted order, and the last count of them
  teardownTimeout: `${PERSISTED_WITHIN_S + 60}s`,
  thresholds: {
    // the checkouts that do the work (reserve a unit, queue the order), not the quick sold-out answers that outnumber them
    'http_req_duration{name:checkout,status:202}': ['p(99)<250', 'p(95)<100'],
    'http_req_duration{name:checkout}': ['p(99)<250'],
    // the buyers who could still have bought, not those after the last unit, whom nothing was lost on
    checkout_turned_away_in_stock: [`rate<${TURNED_AWAY_AT_MOST}`],
    // a buyer k6 could not send (no free VU) is one the other thresholds never saw
    dropped_iterations: ['count==0'],
    unexpected_statuses: ['count==0'],
    'checkout_outcomes{outcome:accepted}': ['count>0', `count<=${STOCK}`],
    // the stock checks after the sale (the only checks in this script)
    checks: ['rate==1'],
  },
};

interface Run {
  skuId: string;
}

export function setup(): Run {
  const now = Date.now();
  createSku({
    skuId: HOT_SKU,
    stock: STOCK,
    priceCents: 99_900,
    deduction: 'placement',
    flashSale: { priceCents: 49_900, startsAt: new Date(now - 60_000).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 1 },
  });
  return { skuId: HOT_SKU };
}

const OUTCOME_OF_STATUS: Record<number, string> = { 202: 'accepted', 409: 'sold_out', 429: 'rate_limited', 503: 'shed' };

/**
 * Whether this VU has been answered sold out. VUs share nothing, so each learns it from its
 * own first 409: an answer shed just after the last unit went may still count as turned
 * away in stock, which errs strict.
 */
let soldOut = false;

export default function buyOnce({ skuId }: Run): void {
  const buyer = `spike-${exec.scenario.iterationInTest}`;
  // a key of its own for every buyer, at a SKU of this run's: a 202 is never a replay (whose answer would look the same)
  const response = checkout(buyer, skuId, `spike-${skuId}-${buyer}`);
  expectStatus(response, 'checkout', [202, 409, 429, 503]);
  outcomes.add(1, { outcome: OUTCOME_OF_STATUS[response.status] ?? 'unexpected' });
  if (response.status === 409) soldOut = true;
  else if (!soldOut) turnedAwayInStock.add(response.status !== 202);
}

/** Orders closed before payment: their units went back on sale. */
const GAVE_UNITS_BACK = new Set(['EXPIRED', 'CANCELLED']);

/** The units the stock counts as taken, and the units the SKU's orders in MySQL hold; the stock read first. */
function unitsTakenAndOrdered(skuId: string): { taken: number; ordered: number } {
  const { reserved, sold } = skuStock(skuId);
  const ordered = persistedOrdersOf(skuId)
    .filter((order) => !GAVE_UNITS_BACK.has(order.status))
    .flatMap((order) => order.items.filter((line) => line.skuId === skuId))
    .reduce((units, line) => units + line.qty, 0);
  return { taken: reserved + sold, ordered };
}

export function teardown({ skuId }: Run): void {
  const stock = skuStock(skuId);
  check(stock, {
    'units add up: available + reserved + sold = stock': (s) => s.available + s.reserved + s.sold === STOCK,
    'never oversold': (s) => s.available >= 0 && s.sold + s.reserved <= STOCK,
    ...(MUST_SELL_OUT ? { 'sold out: no unit left after more buyers than units': (s: typeof stock) => s.available === 0 } : {}),
  });

  // the counters above are the reservation script's own; the orders are the worker's, written from the queue
  const deadline = Date.now() + PERSISTED_WITHIN_S * 1000;
  let units = unitsTakenAndOrdered(skuId);
  while (units.ordered !== units.taken && Date.now() < deadline) {
    sleep(2);
    units = unitsTakenAndOrdered(skuId);
  }
  check(units, { [`nothing lost: every unit taken is an order in MySQL within ${PERSISTED_WITHIN_S} s`]: (u) => u.ordered === u.taken });
}
