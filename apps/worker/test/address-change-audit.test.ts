// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { buyerAddress, holdRow, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A split order's address change races what moves its parts: a child's SHIPPED callback, and the
 * split itself. This test holds the parent's row (as other work would) so that the change and the
 * racing step queue behind it in a known order, then lets them go.
 */
describe('an address change of a split order racing the steps that move its parts', () => {
  let system: OrderSystem;
  const newAddress = { ...buyerAddress, line1: '7 New Road', postalCode: 'E2 7QQ' };

  beforeAll(async () => {
    system = await startOrderSystem('address_change_audit');
    await system.createSku({ skuId: 'LAMP', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'RUG', priceCents: 9_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => system?.close());

  /** Statements of the system's own sessions waiting for the order's row: its update, or a child's move taking it first. */
  const waitingFor = async (orderId: string) =>
    Number(
      (
        await sql<{ waiting: number }>`SELECT COUNT(*) AS waiting FROM information_schema.PROCESSLIST
          WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query'
          AND (INFO LIKE ${`update \`orders\`%${orderId}%`} OR INFO LIKE ${`select%from \`orders\`%${orderId}%for update`})`.execute(system.env.db)
      ).rows[0]!.waiting,
    );
  const queued = (orderId: string, count: number, what: string) => waitFor(async () => (await waitingFor(orderId)) >= count, { what, timeoutMs: 10_000, intervalMs: 200 });
  const atWarehouse = async (orderId: string) => (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
  const addressOf = async (orderId: string) => (await system.order(orderId)).address.line1;

  async function paidLampAndRug(buyer: string): Promise<string> {
    const orderId = await system.checkout(buyer, [
      { skuId: 'LAMP', qty: 1 },
      { skuId: 'RUG', qty: 1 },
    ]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const paid = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    expect(paid.status).toBe(202);
    return orderId;
  }

  it('changes the address of every parcel or of none when the last parcel ships while the change is being made', async () => {
    const orderId = await paidLampAndRug('ada');
    const split = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const [first, last] = [...split.subOrders].sort() as [string, string];
    await system.waitForStatus(first, 'IN_FULFILLMENT');
    await system.waitForStatus(last, 'IN_FULFILLMENT');

    const held = await holdRow(system.env.db, 'orders', 'order_id', orderId);
    let change!: Promise<{ status: number; body: any }>;
    let shipped!: Promise<unknown>;
    try {
      // the buyer's change reaches the order first, the warehouse's SHIPPED of the rug's parcel right after it
      change = system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('ada'), body: { address: newAddress } });
      await queued(orderId, 1, 'the address change to wait for the order');
      shipped = system.warehouseSim.request('POST', `/__admin/orders/${last}/events`, { body: { event: 'SHIPPED' } });
      await queued(orderId, 2, 'the SHIPPED callback to wait behind it');
    } finally {
      await held.release();
    }
    const answer = await change;
    await shipped;
    await system.waitForStatus(last, 'SHIPPED');

    const lines = [await addressOf(orderId), await addressOf(first), await addressOf(last)];
    if (answer.status === 409) {
      // refused: no parcel goes to the new address, and the order does not say it does
      expect(answer.body.code).toBe('ILLEGAL_TRANSITION');
      expect(lines).toEqual([buyerAddress.line1, buyerAddress.line1, buyerAddress.line1]);
      expect((await atWarehouse(first)).address.line1).toBe(buyerAddress.line1);
    } else {
      // taken before the parcel shipped: every part holds it, and the lamp's warehouse is told
      expect(answer.status).toBe(200);
      expect(lines).toEqual([newAddress.line1, newAddress.line1, newAddress.line1]);
      await waitFor(async () => (await atWarehouse(first)).address.line1 === newAddress.line1, { what: "the lamp's warehouse to have the new address" });
    }
  });

  it('sends both parcels to the new address when the buyer changes it while the paid order is being split', async () => {
    const { fulfillment } = system.workers.deps.queues;
    // the settle job (which splits the order) waits behind a paused fulfilment queue until the order's row is held
    await fulfillment.pause();
    let orderId!: string;
    let change!: Promise<{ status: number; body: any }>;
    try {
      orderId = await paidLampAndRug('bea');
      await system.waitForStatus(orderId, 'PAID');
      const held = await holdRow(system.env.db, 'orders', 'order_id', orderId);
      try {
        await fulfillment.resume();
        // the split's write of the order comes first, the buyer's change (which finds no children yet) right after it
        await queued(orderId, 1, 'the split to wait for the order');
        expect((await system.order(orderId)).subOrders).toEqual([]);
        change = system.request('PATCH', `/v1/orders/${orderId}/address`, { token: system.token('bea'), body: { address: newAddress } });
        await queued(orderId, 2, 'the address change to wait behind the split');
      } finally {
        await held.release();
      }
    } finally {
      await fulfillment.resume();
    }
    const answer = await change;
    expect(answer.status).toBe(200);
    expect(answer.body.address.line1).toBe(newAddress.line1);

    const children = answer.body.subOrders as string[];
    expect(children).toHaveLength(2);
    for (const child of children) {
      await system.waitForStatus(child, 'IN_FULFILLMENT');
      expect(await addressOf(child)).toBe(newAddress.line1);
      await waitFor(async () => (await atWarehouse(child))?.address.line1 === newAddress.line1, { what: `the warehouse of ${child} to ship to the new address`, timeoutMs: 10_000 });
    }
  });
});
