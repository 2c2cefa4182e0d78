/**
 * A flash sale opens: arrivals ramp within seconds to PEAK_RATE checkouts per second, all
 * at one hot SKU with STOCK units and a per-buyer limit of 1. Every buyer is new.
 *
 * Passes when: checkout p99 stays under 250 ms (p95 under 100 ms) at the peak, fewer than
 * 1% of buyers are turned away by load shedding, rate limiting or errors, no answer is
 * other than 202 accepted / 409 sold out / 429 rate limited / 503 shed, and afterwards
 * the SKU's units add up exactly (nothing oversold, nothing lost).
 *
 *   k6 run k6/flash-sale-spike.ts                              (against npm start)
 *   docker compose --profile load run --rm k6 run /k6/flash-sale-spike.ts
 */
import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { type Options } from 'k6/options';
import { Counter } from 'k6/metrics';
import { checkout, createSku, dnsOverReplicas, envNumber, expectStatus, skuStock } from './lib/shop.ts';

const PEAK_RATE = envNumber('PEAK_RATE', 3000);
const STOCK = envNumber('STOCK', 10_000);
const HOT_SKU = __ENV.HOT_SKU ?? `HOT-${Date.now()}`;

const outcomes = new Counter('checkout_outcomes');

// Sold out (409) is the sale working; shed (503) and rate limited (429) count as failed.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const options: Options = {
  dns: dnsOverReplicas,
  scenarios: {
    sale_opens: {
      executor: 'ramping-arrival-rate',
      startRate: Math.ceil(PEAK_RATE / 20),
      timeUnit: '1s',
      preAllocatedVUs: Math.ceil(PEAK_RATE / 4),
      maxVUs: PEAK_RATE * 2,
      stages: [
        { target: PEAK_RATE, duration: '10s' }, // the sale opens: everyone arrives at once
        { target: PEAK_RATE, duration: '50s' }, // and keeps coming after the stock is gone
        { target: 0, duration: '10s' },
      ],
    },
  },
  thresholds: {
    'http_req_duration{name:checkout}': ['p(99)<250', 'p(95)<100'],
    // at most 1% of buyers turned away by load shedding, rate limiting or errors
    'http_req_failed{name:checkout}': ['rate<0.01'],
    unexpected_statuses: ['count==0'],
    'checkout_outcomes{outcome:accepted}': ['count>0'],
    // the stock checks after the sale (the only checks in this script)
    checks: ['rate==1'],
  },
};

export function setup(): { skuId: string } {
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

export default function buyOnce({ skuId }: { skuId: string }): void {
  const buyer = `spike-${exec.scenario.iterationInTest}`;
  const response = checkout(buyer, skuId, `spike-${skuId}-${buyer}`);
  expectStatus(response, 'checkout', [202, 409, 429, 503]);
  outcomes.add(1, { outcome: OUTCOME_OF_STATUS[response.status] ?? 'unexpected' });
}

export function teardown({ skuId }: { skuId: string }): void {
  const stock = skuStock(skuId);
  check(stock, {
    'units add up: available + reserved + sold = stock': (s) => s.available + s.reserved + s.sold === STOCK,
    'never oversold': (s) => s.available >= 0 && s.sold + s.reserved <= STOCK,
  });
}
