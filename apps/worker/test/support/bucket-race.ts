import { buyerAddress } from '@orders/testing';
import { expect } from 'vitest';
import type { OrderSystem } from './order-system.js';

/**
 * 100 buyers race for one unit each of a SKU split into buckets, and those who heard
 * OUT_OF_STOCK try again while the intake's rebalancer refills their buckets, until a round
 * sells nothing with none left; returns how many got one.
 */
export async function raceForOneEach(system: OrderSystem, skuId: string): Promise<number> {
  const accepted = new Set<string>();
  for (let round = 0; round < 10; round++) {
    const racers = Array.from({ length: 100 }, (_, i) => `${skuId}-racer-${i}`).filter((buyer) => !accepted.has(buyer));
    const answers = await Promise.all(
      racers.map((buyer) => system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `race-${round}` }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } })),
    );
    expect(answers.filter((answer) => answer.status !== 202 && answer.body.code !== 'OUT_OF_STOCK').map((answer) => answer.body)).toEqual([]);
    const before = accepted.size;
    answers.forEach((answer, i) => answer.status === 202 && accepted.add(racers[i]!));
    if (accepted.size === before && (await system.stockOf(skuId)).available === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return accepted.size;
}
