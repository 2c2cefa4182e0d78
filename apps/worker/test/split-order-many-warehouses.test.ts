// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A paid order splits into one child per (channel, merchant, warehouse) however many there are: its
 * split step's detail names the children while their ids fit its column (500 characters, 17 of them),
 * and past that says how many (the step's write failed, the order stayed PAID and nothing shipped).
 */
describe('a paid order shipping from many warehouses', () => {
  let system: OrderSystem;
  const WAREHOUSES = 18;
  const skuOf = (n: number) => `PART-${n}`;

  beforeAll(async () => {
    system = await startOrderSystem('split_many_warehouses', { WAREHOUSE_SIM_STEP_MS: '0' });
    for (let n = 1; n <= WAREHOUSES; n++) {
      await system.createSku({ skuId: skuOf(n), priceCents: 1_000 + n, merchantId: 'shop', channel: 'self', warehouseId: `wh-${n}`, stock: 10, deduction: 'placement' });
    }
  });
  afterAll(async () => system?.close());

  it('splits into 18 children, one per warehouse, each handed to its warehouse, their payables adding up to the order', async () => {
    const orderId = await system.checkout('ida', Array.from({ length: WAREHOUSES }, (_, i) => ({ skuId: skuOf(i + 1), qty: 1 })));
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ida'), body: { method: 'card' } })).status).toBe(202);
    const children = await waitFor(
      async () => {
        const subOrders = (await system.order(orderId)).subOrders as string[];
        return subOrders.length === WAREHOUSES && (await Promise.all(subOrders.map(async (child) => (await system.order(child)).status))).every((status) => status === 'IN_FULFILLMENT') && subOrders;
      },
      { what: `order ${orderId} split into ${WAREHOUSES} children in fulfilment`, timeoutMs: 20_000 },
    );
    const parent = await system.order(orderId);
    const kids = await Promise.all(children.map((child) => system.order(child)));
    expect(kids.reduce((sum, child) => sum + child.amounts.payableCents, 0)).toBe(parent.amounts.payableCents);
    expect(new Set(kids.map((child) => child.items[0].skuId)).size).toBe(WAREHOUSES);
    expect(parent.history.find((step: any) => step.action === 'split').detail).toBe(`split into ${WAREHOUSES} child orders`);
  });
});
