// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { QUEUE } from '@orders/queues';
import { buyerAddress, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A refund of units in a parcel the warehouse holds (IN_FULFILLMENT) pays the money back only
 * once the warehouse has taken them out: should the parcel leave with them first, the shop
 * would have paid for goods the buyer gets. Then the refund is withdrawn and the order ships.
 *
 * The warehouse's faults, its hand-overs paused, the kettles' stock and the counts some tests read are the
 * whole system's: each group's tests run one after another on a system of the group's own, and the groups
 * side by side.
 */
describe('a refund of units the warehouse holds in a parcel', () => {
  const started = async () => {
    const system = await startOrderSystem('refund_waits_for_warehouse', {
      // the warehouse advances only when the test sends its events
      WAREHOUSE_SIM_STEP_MS: '0',
      WAREHOUSE_BREAKER_VOLUME_THRESHOLD: '2',
      WAREHOUSE_BREAKER_RESET_MS: '300',
      WAREHOUSE_BREAKER_TIMEOUT_MS: '1000',
      EXTERNAL_RETRY_DELAY_MS: '100',
      // the backstop sweep looks often: a refund waiting for the warehouse is no refund job lost
      OVERDUE_SWEEP_INTERVAL_MS: '300',
    });
    await system.createSku({ skuId: 'KETTLE', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 40, deduction: 'placement' });
    const coupon = { code: 'WELCOME', kind: 'fixed', offCents: 500, minSpendCents: 1_000, perBuyerLimit: 1, startsAt: '2020-01-01T00:00:00Z', endsAt: '2100-01-01T00:00:00Z' };
    expect((await system.request('POST', '/v1/admin/coupons', { token: system.token('ops', 'admin'), body: coupon })).status).toBe(201);
    return system;
  };
  const noFaults = (system: OrderSystem) => system.warehouseSim.request('PUT', '/__admin/faults', { body: { outage: false, latencyMs: 0 } });

  /** What the tests do and read on their group's system. */
  const helpersOf = (the: () => OrderSystem) => {
    const admin = () => the().token('ops', 'admin');
    const kettles = async () => (await the().request('GET', '/v1/admin/skus/KETTLE', { token: admin() })).body.stock;
    const paidBack = async (orderId: string) => (await the().paymentSim.request('GET', '/__admin/payments')).body.refunds.filter((refund: any) => refund.refundId.startsWith(orderId));
    const refundsOf = async (orderId: string, buyer: string) => (await the().request('GET', `/v1/orders/${orderId}/refunds`, { token: the().token(buyer) })).body.items;
    const checkout = (buyer: string, qty: number, key: string, couponCode?: string) =>
      the().request('POST', '/v1/orders', { token: the().token(buyer), headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'KETTLE', qty }], address: buyerAddress, ...(couponCode ? { couponCode } : {}) } });
    /** An order of `qty` kettles, placed and paid: its hand-over is the warehouse's to answer. */
    const placedAndPaid = async (buyer: string, qty: number, couponCode?: string) => {
      const placed = await checkout(buyer, qty, `${buyer}-first`, couponCode);
      expect(placed.status).toBe(202);
      const orderId = placed.body.orderId as string;
      await the().waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await the().request('POST', `/v1/orders/${orderId}/pay`, { token: the().token(buyer), body: { method: 'card' } })).status).toBe(202);
      return orderId;
    };
    /** An order of `qty` kettles, paid and handed to the warehouse. */
    const inFulfilment = async (buyer: string, qty: number, couponCode?: string) => {
      const orderId = await placedAndPaid(buyer, qty, couponCode);
      await the().waitForStatus(orderId, 'IN_FULFILLMENT');
      return orderId;
    };
    /** A paid order of kettles and two teas, from two warehouses, split in two children in fulfilment. */
    const paidSplitOrder = async (buyer: string, kettles: number, couponCode?: string) => {
      const { orderId, children } = await the().paidAndSplit(buyer, [{ skuId: 'KETTLE', qty: kettles }, { skuId: 'TEA', qty: 2 }], couponCode);
      const skusOf = await Promise.all(children.map(async (child) => (await the().order(child)).items[0].skuId as string));
      const [kettleChild, teaChild] = ['KETTLE', 'TEA'].map((skuId) => children[skusOf.indexOf(skuId)]!) as [string, string];
      return { orderId, kettleChild, teaChild };
    };
    const warehouseOutage = async (outage: boolean) => the().warehouseSim.request('PUT', '/__admin/faults', { body: { outage } });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500));
    const jobsRestored = async () => (await the().workers.deps.metrics.refundJobsRestored.get()).values[0]?.value ?? 0;
    /** What an operator sees of the refunds held for the warehouse (RefundsHeldForWarehouse), as the workers' scrape shows them. */
    const heldForWarehouse = async () => {
      const scraped = await the().workers.deps.metrics.exposition();
      const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(scraped)?.[1]);
      return { count: value('refunds_held_for_warehouse'), waitedHours: Math.round(value('refunds_held_for_warehouse_oldest_age_seconds') / 3_600) };
    };
    /**
     * A paid order whose hand-over reached the warehouse, which answered after the hand-over stopped
     * waiting (its breaker's 1 s), and which is then unreachable: the order still reads PAID.
     */
    const handedOverUnanswered = async (buyer: string) => {
      await the().warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 2_500 } });
      const orderId = await placedAndPaid(buyer, 2);
      const atWarehouse = async () => (await the().warehouseSim.request('GET', '/__admin/orders')).body.orders.find((order: any) => order.orderId === orderId);
      await waitFor(atWarehouse, { what: 'the order at the warehouse', timeoutMs: 15_000 });
      await warehouseOutage(true);
      await the().warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
      expect((await the().order(orderId)).status).toBe('PAID');
      return { orderId, atWarehouse };
    };
    return { admin, kettles, paidBack, refundsOf, checkout, placedAndPaid, inFulfilment, paidSplitOrder, warehouseOutage, settle, jobsRestored, heldForWarehouse, handedOverUnanswered };
  };

  describe.concurrent('while the warehouse is unreachable', () => {
    let system: OrderSystem;
    const { kettles, paidBack, refundsOf, checkout, placedAndPaid, inFulfilment, warehouseOutage, settle, jobsRestored, heldForWarehouse, handedOverUnanswered } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('pays nothing back while the warehouse cannot be told, and pays once, with the units back on sale, once it took them out', async ({ expect }) => {
      const orderId = await inFulfilment('ann', 2);
      const [stockBefore, restoredBefore] = [await kettles(), await jobsRestored()];
      await warehouseOutage(true);
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ann'), body: { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
      expect([refund.status, refund.body.status, refund.body.refunds[0].restockHeld]).toEqual([202, 'PENDING', true]);
      await settle();
      // its job is the warehouse update's, waiting behind the breaker: the sweeps found nothing lost
      expect(await jobsRestored()).toBe(restoredBefore);
      const [waiting] = await refundsOf(orderId, 'ann');
      expect([waiting.status, waiting.restockHeld, waiting.parts.map((part: any) => part.status)]).toEqual(['PENDING', true, ['PENDING']]);
      expect(await paidBack(orderId)).toEqual([]);
      expect(await kettles()).toEqual(stockBefore);
      // held two hours as far as the alert knows
      await sql`UPDATE refunds SET created_at = UTC_TIMESTAMP(3) - INTERVAL 2 HOUR WHERE refund_id = ${waiting.refundId}`.execute(system.env.db);
      await expect.poll(heldForWarehouse).toEqual({ count: 1, waitedHours: 2 });

      await warehouseOutage(false);
      await system.waitForRefund(orderId);
      await expect.poll(heldForWarehouse).toEqual({ count: 0, waitedHours: 0 });
      const [paid] = await refundsOf(orderId, 'ann');
      expect([paid.status, paid.restockHeld]).toEqual(['SUCCEEDED', false]);
      expect((await paidBack(orderId)).map((back: any) => back.amountCents)).toEqual([4_000]);
      expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available + 1, sold: stockBefore.sold - 1 });
      expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
    });

    it.sequential('gives a cancelled order’s coupon use back once the warehouse took its units out, and keeps it used when the parcel left with them', async ({ expect }) => {
      // the warehouse down while the buyer cancels: the money and the coupon use wait for it
      const bea = await inFulfilment('bea', 1, 'WELCOME');
      await warehouseOutage(true);
      const cancelled = await system.request('POST', `/v1/orders/${bea}/cancel`, { token: system.token('bea'), body: { reason: 'changed my mind' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      await settle();
      const early = await checkout('bea', 1, 'bea-again-early', 'WELCOME');
      expect([early.status, early.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
      expect(await paidBack(bea)).toEqual([]);
      await warehouseOutage(false);
      expect((await system.waitForStatus(bea, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(3_500);
      await waitFor(async () => (await checkout('bea', 1, 'bea-again', 'WELCOME')).status === 202, { what: 'the coupon use back with bea', timeoutMs: 10_000 });

      // the parcel left (its SHIPPED held up on the way) before the warehouse read the cancel: nothing is paid back, the coupon stays used
      const cy = await inFulfilment('cy', 1, 'WELCOME');
      await system.warehouseSim.request('POST', `/__admin/orders/${cy}/events`, { body: { event: 'SHIPPED', notify: false } });
      expect((await system.request('POST', `/v1/orders/${cy}/cancel`, { token: system.token('cy'), body: { reason: 'changed my mind' } })).status).toBe(200);
      await waitFor(async () => (await refundsOf(cy, 'cy'))[0].status === 'WITHDRAWN', { what: 'the refund withdrawn' });
      const order = await system.waitForStatus(cy, 'IN_FULFILLMENT');
      expect(order.amounts.refundedCents).toBe(0);
      const again = await checkout('cy', 1, 'cy-again', 'WELCOME');
      expect([again.status, again.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);
      expect(await paidBack(cy)).toEqual([]);
      // the parcel's SHIPPED arrives: the order ships as any other
      const shipped = await system.signedCallback('warehouse', { orderId: cy, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
    });

    it.sequential('holds the refund of a paid order the warehouse was asked to take, its answer lost: nothing paid and the units sold until the warehouse dropped the order', async ({ expect }) => {
      const stockBefore = await kettles();
      const { orderId, atWarehouse } = await handedOverUnanswered('dee');
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('dee'), body: { reason: 'changed my mind' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      await settle();
      const [waiting] = await refundsOf(orderId, 'dee');
      expect([waiting.status, waiting.restockHeld]).toEqual(['PENDING', true]);
      expect(await paidBack(orderId)).toEqual([]);
      expect((await kettles()).available).toBe(stockBefore.available - 2);

      await warehouseOutage(false);
      expect((await system.waitForStatus(orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(8_000);
      expect((await paidBack(orderId)).map((back: any) => back.amountCents)).toEqual([8_000]);
      expect((await atWarehouse()).cancelled).toBe(true);
      expect((await kettles()).available).toBe(stockBefore.available);
    });

    it.sequential('withdraws the refund of a paid order whose parcel left before the warehouse, asked to take it and its answer lost, could be told: nothing paid back, and the order ships', async ({ expect }) => {
      const stockBefore = await kettles();
      const { orderId } = await handedOverUnanswered('eve');
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('eve'), body: { reason: 'changed my mind' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      // the parcel leaves the warehouse, its SHIPPED held up on the way
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
      await warehouseOutage(false);
      await waitFor(async () => (await refundsOf(orderId, 'eve'))[0].status === 'WITHDRAWN', { what: 'the refund withdrawn', timeoutMs: 20_000 });
      const order = await system.waitForStatus(orderId, 'IN_FULFILLMENT');
      expect(order.amounts.refundedCents).toBe(0);
      expect(await paidBack(orderId)).toEqual([]);
      expect((await kettles()).available).toBe(stockBefore.available - 2);
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
    });

    it.sequential('pays back at once the refund of a paid order whose hand-over never reached the warehouse', async ({ expect }) => {
      // the warehouse answers 503 to every ask: it holds nothing
      await warehouseOutage(true);
      const orderId = await placedAndPaid('fay', 1);
      await system.waitForStatus(orderId, 'PAID');
      await settle();
      // the hand-over is asked again every EXTERNAL_RETRY_DELAY_MS: a cancel during an ask (noted, not yet refused) rightly
      // waits for the warehouse's answer; here it comes between two asks, as on a box whose asks are quick
      const handOvers = system.workers.workers.filter((worker) => worker.name === QUEUE.fulfillment);
      expect(handOvers.length).toBeGreaterThan(0);
      await Promise.all(handOvers.map((worker) => worker.pause()));
      try {
        const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('fay'), body: { reason: 'changed my mind' } });
        expect(cancelled.status).toBe(200);
        expect((await refundsOf(orderId, 'fay'))[0].restockHeld).toBe(false);
      } finally {
        for (const worker of handOvers) worker.resume();
      }
      expect((await system.waitForStatus(orderId, 'REFUNDED', 20_000)).amounts.refundedCents).toBe(4_000);
    });
  });

  describe.concurrent('when the parcel left before the warehouse read the change', () => {
    let system: OrderSystem;
    const { admin, kettles, paidBack, refundsOf, checkout, inFulfilment, paidSplitOrder, settle } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('withdraws a refund of some units when the parcel’s SHIPPED comes before the warehouse read it: every unit ships, none counts as refunded, and the buyer may return them once delivered', async ({ expect }) => {
      const { fulfillment } = system.workers.deps.queues;
      const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
      const orderId = await inFulfilment('dan', 3);
      const stockBefore = await kettles();
      await fulfilmentWorker.pause();
      try {
        const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('dan'), body: { reason: 'two are enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
        expect([refund.status, refund.body.refunds[0].restockHeld]).toEqual([202, true]);
        // the parcel leaves the warehouse with every unit, the change never read
        await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
        const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-3', at: new Date().toISOString() });
        expect([shipped.status, shipped.body.changed, shipped.body.status]).toEqual([200, true, 'SHIPPED']);
      } finally {
        fulfilmentWorker.resume();
      }
      await waitFor(async () => (await fulfillment.getJobs(['waiting', 'prioritized', 'delayed', 'active'])).every((job) => job.data.orderId !== orderId), { what: 'the update job to have run' });
      await settle();
      const [withdrawn] = await refundsOf(orderId, 'dan');
      expect([withdrawn.status, withdrawn.restockHeld, withdrawn.parts.map((part: any) => part.status)]).toEqual(['WITHDRAWN', false, ['WITHDRAWN']]);
      expect(await paidBack(orderId)).toEqual([]);
      expect(await kettles()).toEqual(stockBefore);
      const order = await system.order(orderId);
      expect([order.status, order.items[0].refundedQty, order.amounts.refundedCents]).toEqual(['SHIPPED', 0, 0]);

      const delivered = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
      expect(delivered.body.status).toBe('DELIVERED');
      const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('dan'), body: { reason: 'I had asked for my money back', items: [{ skuId: 'KETTLE', qty: 3 }] } });
      expect([asked.status, asked.body.returns[0].amountCents]).toEqual([202, 12_000]);
    });

    /**
     * `buyer`'s two mugs (2,502 with wh-north's shipping), paid; a refund of one asked while the fulfilment worker,
     * paused, has not told the warehouse, which then ships and delivers the parcel with both. The worker stays paused
     * until `resume`, the refund held; `returned` approves a return and has the warehouse receive it.
     */
    const mugsLeftWithHeldRefund = async (buyer: string) => {
      const placed = await system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `${buyer}-mugs` }, body: { items: [{ skuId: 'MUG', qty: 2 }], address: buyerAddress } });
      const orderId = placed.body.orderId as string;
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
      expect((await system.waitForStatus(orderId, 'IN_FULFILLMENT')).amounts.payableCents).toBe(2_502);
      const { fulfillment } = system.workers.deps.queues;
      const fulfilmentWorker = system.workers.workers.find((worker) => worker.name === fulfillment.name)!;
      const resume = () => fulfilmentWorker.resume();
      await fulfilmentWorker.pause();
      try {
        const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason: 'one is enough', items: [{ skuId: 'MUG', qty: 1 }] } });
        expect([refund.status, refund.body.refunds[0].restockHeld]).toEqual([202, true]);
        // the parcel leaves with both mugs and is delivered before the change was read
        for (const event of ['SHIPPED', 'DELIVERED'] as const) {
          await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event, notify: false } });
          expect((await system.signedCallback('warehouse', { orderId, event, at: new Date().toISOString() })).status).toBe(200);
        }
      } catch (error) {
        resume();
        throw error;
      }
      const returned = async (returnId: string) => {
        expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
        expect((await system.signedCallback('warehouse', { orderId, event: 'RETURN_RECEIVED', returnId, at: new Date().toISOString() })).status).toBe(200);
      };
      /** Asks for the return of one mug: priced `cents`. */
      const askReturn = async (reason: string, cents: number): Promise<string> => {
        const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason, items: [{ skuId: 'MUG', qty: 1 }] } });
        expect([asked.status, asked.body.returns[0].amountCents]).toEqual([202, cents]);
        return asked.body.returnId as string;
      };
      const withdrawn = () => waitFor(async () => (await refundsOf(orderId, buyer)).some((refund: any) => refund.kind === 'refund' && refund.status === 'WITHDRAWN'), { what: 'the held refund withdrawn' });
      return { orderId, resume, returned, askReturn, withdrawn };
    };

    it.sequential('pays back a return asked while a refund of the same parcel waited for the warehouse, then withdrawn, as its units stand at its receipt: the shipping once, with the last unit', async ({ expect }) => {
      await system.createSku({ skuId: 'MUG', priceCents: 1_001, merchantId: 'shop', channel: 'self', warehouseId: 'wh-north', stock: 40, deduction: 'placement' });
      expect((await system.request('PUT', '/v1/admin/warehouses/wh-north/shipping', { token: admin(), body: { feeCents: 500 } })).status).toBe(200);
      const { orderId, resume, returned, askReturn, withdrawn } = await mugsLeftWithHeldRefund('rita');
      let firstReturn: string;
      try {
        // asked now, the other mug reads as the parcel's last unit: its shipping with it
        firstReturn = await askReturn('chipped', 1_501);
      } finally {
        resume();
      }
      await withdrawn();
      // received once the refund was withdrawn: one mug of two back, no shipping; the buyer keeps the other
      await returned(firstReturn);
      const once = await system.waitForStatus(orderId, 'DELIVERED');
      expect([once.items[0].refundedQty, once.amounts.refundedCents]).toEqual([1, 1_001]);
      await returned(await askReturn('the other too', 1_501));
      expect((await system.waitForStatus(orderId, 'RETURNED')).amounts.refundedCents).toBe(2_502);
    });

    it.sequential('pays back a return received while a refund of the same parcel still waited for the warehouse, leaving the order DELIVERED; that refund then withdrawn, the last mug back lands the order on what it paid, the shipping once', async ({ expect }) => {
      const { orderId, resume, returned, askReturn, withdrawn } = await mugsLeftWithHeldRefund('ruth');
      try {
        // the other mug comes back while the refund still counts: priced as the parcel's last unit, its shipping with it
        await returned(await askReturn('chipped', 1_501));
        // not RETURNED: the held refund's mug may have left with the parcel, the buyer's to return
        expect((await system.order(orderId)).status).toBe('DELIVERED');
      } finally {
        resume();
      }
      await withdrawn();
      const once = await system.order(orderId);
      expect([once.status, once.items[0].refundedQty, once.amounts.refundedCents]).toEqual(['DELIVERED', 1, 1_501]);
      // the mug the parcel left with comes back last: 1,001, the shipping already paid, 2,502 in all
      await returned(await askReturn('the other too', 1_001));
      expect((await system.waitForStatus(orderId, 'RETURNED')).amounts.refundedCents).toBe(2_502);
      await waitFor(async () => (await paidBack(orderId)).reduce((sum: number, refund: any) => sum + refund.amountCents, 0) === 2_502, { what: 'both returns paid back' });
    });

    it.sequential('cancels a split order whose one parcel left before its warehouse read the cancel: that child’s refund withdrawn and the child shipped, the other paid back once its warehouse took its units out, the coupon kept', async ({ expect }) => {
      const { orderId, kettleChild, teaChild } = await paidSplitOrder('eli', 1, 'WELCOME');
      const teaBefore = (await system.request('GET', '/v1/admin/skus/TEA', { token: admin() })).body.stock;

      // the kettle's parcel leaves, its SHIPPED held up on the way; the buyer cancels the whole order
      await system.warehouseSim.request('POST', `/__admin/orders/${kettleChild}/events`, { body: { event: 'SHIPPED', notify: false } });
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('eli'), body: { reason: 'changed my mind' } });
      expect(cancelled.status).toBe(200);
      await system.waitForStatus(teaChild, 'REFUNDED', 20_000);
      await waitFor(async () => (await refundsOf(kettleChild, 'eli'))[0]?.status === 'WITHDRAWN', { what: "the kettle child's refund withdrawn" });
      await system.waitForStatus(kettleChild, 'IN_FULFILLMENT');
      // the tea came out of its parcel and is back on sale; the kettle left, unpaid back
      expect((await system.request('GET', '/v1/admin/skus/TEA', { token: admin() })).body.stock).toEqual({ ...teaBefore, available: teaBefore.available + 2, sold: teaBefore.sold - 2 });
      const [teaRefund] = await refundsOf(teaChild, 'eli');
      expect((await paidBack(teaChild)).map((back: any) => back.refundId)).toEqual([teaRefund.parts[0].partId]);
      expect(await paidBack(kettleChild)).toEqual([]);
      // part of the order ships: the coupon stays used
      const again = await checkout('eli', 1, 'eli-again', 'WELCOME');
      expect([again.status, again.body.code]).toEqual([422, 'COUPON_LIMIT_EXCEEDED']);

      const shipped = await system.signedCallback('warehouse', { orderId: kettleChild, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
      const order = await system.order(orderId);
      expect(order.amounts.refundedCents).toBe(teaRefund.amountCents);
    });

    it.sequential('no longer offers the cancel once it was withdrawn, the parcel having left before the warehouse read it, and the cancel route refuses it alike until the order ships', async ({ expect }) => {
      const orderId = await inFulfilment('kit', 1);
      const offered = async (token: string) => {
        const answer = await system.request('GET', `/v1/orders/${orderId}/actions`, { token });
        expect(answer.status).toBe(200);
        return (answer.body.actions as Array<{ action: string; href: string }>).map((a) => `${a.action} ${a.href}`).sort();
      };
      const shop = system.token('shop', 'merchant');
      expect(await offered(admin())).toContain(`refund /v1/orders/${orderId}/cancel`);

      // the parcel leaves, its SHIPPED held up on the way, before the warehouse reads the operator's cancel
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: admin(), body: { reason: 'buyer called' } });
      expect([cancelled.status, cancelled.body.status]).toEqual([200, 'REFUNDING']);
      await waitFor(async () => (await refundsOf(orderId, 'kit'))[0]?.status === 'WITHDRAWN', { what: 'the cancel withdrawn' });
      await system.waitForStatus(orderId, 'IN_FULFILLMENT');

      // IN_FULFILLMENT again, as when the cancel was offered: the parcel left, and the operator and the merchant are offered nothing the routes refuse
      expect(await offered(admin())).toEqual([]);
      expect(await offered(shop)).toEqual([]);
      for (const token of [admin(), shop, system.token('kit')]) {
        const again = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token, body: { reason: 'buyer called' } });
        expect([again.status, again.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
      }
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
    });

    it.sequential('refuses a cancel, a further refund of lines and a new address once a refund of some lines was withdrawn, the parcel having left before the warehouse read it, and offers none of them until the order ships', async ({ expect }) => {
      const orderId = await inFulfilment('kim', 3);
      const kim = system.token('kim');
      // the parcel leaves with the three kettles, its SHIPPED held up on the way, before the warehouse reads the refund of one
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
      const oneBack = { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] };
      expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: kim, body: oneBack })).status).toBe(202);
      await waitFor(async () => (await refundsOf(orderId, 'kim'))[0]?.status === 'WITHDRAWN', { what: 'the refund of a kettle withdrawn' });
      expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');

      // still IN_FULFILLMENT, the order's parcel is gone: each route that needs it at the warehouse refuses, and none is offered
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: kim, body: { reason: 'changed my mind' } });
      // each says why, though the order's status alone would take it
      const parcelLeft = expect.stringContaining('the parcel of the order left the warehouse before the units could be taken out of it');
      expect([cancelled.status, cancelled.body.code, cancelled.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', parcelLeft]);
      const moved = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: kim, body: { address: { ...buyerAddress, city: 'Elsewhere' } } });
      expect([moved.status, moved.body.code, moved.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', parcelLeft]);
      for (const body of [{ reason: 'another is enough', items: [{ skuId: 'KETTLE', qty: 1 }] }, { reason: 'none at all' }]) {
        const refunded = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: kim, body });
        expect([refunded.status, refunded.body.code, refunded.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', parcelLeft]);
      }
      // the refund withdrawn, asked again, is answered as it stands
      const repeated = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: kim, body: oneBack });
      expect([repeated.status, repeated.body.status, repeated.body.replayed]).toEqual([202, 'WITHDRAWN', true]);
      await settle();
      expect((await refundsOf(orderId, 'kim')).map((refund: any) => refund.status)).toEqual(['WITHDRAWN']);
      const order = await system.order(orderId);
      expect([order.status, order.address.city, order.amounts.refundedCents]).toEqual(['IN_FULFILLMENT', buyerAddress.city, 0]);
      for (const token of [admin(), system.token('shop', 'merchant')]) {
        expect((await system.request('GET', `/v1/orders/${orderId}/actions`, { token })).body.actions).toEqual([]);
      }
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
    });

    it.sequential('refuses, on a split order one child of which left with the units of a refund of some lines (withdrawn), what would move that child, naming it, and still refunds the other child’s lines', async ({ expect }) => {
      const lea = system.token('lea');
      const { orderId, kettleChild, teaChild } = await paidSplitOrder('lea', 2);

      // the kettles' parcel leaves before its warehouse reads the refund of one of them
      await system.warehouseSim.request('POST', `/__admin/orders/${kettleChild}/events`, { body: { event: 'SHIPPED', notify: false } });
      expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: lea, body: { reason: 'one is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } })).status).toBe(202);
      await waitFor(async () => (await refundsOf(kettleChild, 'lea'))[0]?.status === 'WITHDRAWN', { what: "the kettle child's refund withdrawn" });

      // the order's cancel and address move the kettle child too: refused naming it, and not offered; a refund of the tea's lines is neither
      const refusals = [
        await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: lea, body: { reason: 'changed my mind' } }),
        await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: lea, body: { address: { ...buyerAddress, city: 'Elsewhere' } } }),
        await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: lea, body: { reason: 'another is enough', items: [{ skuId: 'KETTLE', qty: 1 }] } }),
        await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: lea, body: { reason: 'none at all' } }),
      ];
      expect(refusals.map((refused) => [refused.status, refused.body.code, refused.body.childOrderId])).toEqual(Array(4).fill([409, 'ILLEGAL_TRANSITION', kettleChild]));
      const offered = (await system.request('GET', `/v1/orders/${orderId}/actions`, { token: admin() })).body.actions.map((a: any) => a.action);
      expect(offered).toEqual(['refund_lines']);
      const tea = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: lea, body: { reason: 'too much tea', items: [{ skuId: 'TEA', qty: 1 }] } });
      expect([tea.status, tea.body.refunds.map((refund: any) => refund.orderId)]).toEqual([202, [teaChild]]);
      await waitFor(async () => (await refundsOf(teaChild, 'lea'))[0]?.status === 'SUCCEEDED', { what: "the tea child's refund paid back", timeoutMs: 15_000 });
      expect((await refundsOf(kettleChild, 'lea')).map((refund: any) => refund.status)).toEqual(['WITHDRAWN']);
      expect((await system.order(kettleChild)).address.city).toBe(buyerAddress.city);
    });

    it.sequential('refuses to cancel a split order one child of which left with the units of its own cancel (withdrawn): the other child is not refunded, and that child is not cancelled again', async ({ expect }) => {
      const { orderId, kettleChild, teaChild } = await paidSplitOrder('fay', 1);
      const teaBefore = (await system.request('GET', '/v1/admin/skus/TEA', { token: admin() })).body.stock;

      // the kettle's parcel leaves before its warehouse reads the buyer's cancel of that child: the cancel is withdrawn, the kettle ships
      await system.warehouseSim.request('POST', `/__admin/orders/${kettleChild}/events`, { body: { event: 'SHIPPED', notify: false } });
      expect((await system.request('POST', `/v1/orders/${kettleChild}/cancel`, { token: system.token('fay'), body: { reason: 'changed my mind' } })).status).toBe(200);
      await waitFor(async () => (await refundsOf(kettleChild, 'fay'))[0]?.status === 'WITHDRAWN', { what: "the kettle child's cancel withdrawn" });
      await system.waitForStatus(kettleChild, 'IN_FULFILLMENT');
      // in fulfilment again, the kettle's child offers no cancel, of itself nor of the order, though its table takes one there
      for (const id of [orderId, kettleChild]) {
        const offered = (await system.request('GET', `/v1/orders/${id}/actions`, { token: admin() })).body.actions.map((a: any) => a.action);
        expect(offered).not.toContain('refund');
      }
      const shipped = await system.signedCallback('warehouse', { orderId: kettleChild, event: 'SHIPPED', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);

      // a child has shipped: the order's cancel is refused whole, naming it, as for any split order with a child shipped
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('fay'), body: { reason: 'cancel the rest' } });
      expect([cancelled.status, cancelled.body.code, cancelled.body.childOrderId]).toEqual([409, 'ILLEGAL_TRANSITION', kettleChild]);
      const again = await system.request('POST', `/v1/orders/${kettleChild}/cancel`, { token: system.token('fay'), body: { reason: 'changed my mind' } });
      expect([again.status, again.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
      await settle();
      expect((await system.order(teaChild)).status).toBe('IN_FULFILLMENT');
      expect(await refundsOf(teaChild, 'fay')).toEqual([]);
      expect(await paidBack(teaChild)).toEqual([]);
      expect((await system.request('GET', '/v1/admin/skus/TEA', { token: admin() })).body.stock).toEqual(teaBefore);
    });
  });

  describe.concurrent('when the warehouse took a kettle out, its answer lost to a timeout', () => {
    let system: OrderSystem;
    const { kettles, paidBack, refundsOf, inFulfilment } = helpersOf(() => system);
    beforeAll(async () => {
      system = await started();
    });
    afterEach(async () => {
      if (system) await noFaults(system);
    });
    afterAll(async () => system?.close());

    it.sequential('pays back a refund of some units whose change the warehouse applied, its answer lost to a timeout, when the parcel’s SHIPPED comes before the change is recorded: the units were taken out, not shipped', async ({ expect }) => {
      const orderId = await inFulfilment('gus', 3);
      const stockBefore = await kettles();
      // the warehouse answers after the breaker gave up on it: the change goes through there, its answer is lost here
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_500 } });
      const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('gus'), body: { reason: 'two are enough', items: [{ skuId: 'KETTLE', qty: 1 }] } });
      expect([refund.status, refund.body.refunds[0].restockHeld]).toEqual([202, true]);
      const atWarehouse = async () => ((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders as any[]).find((order) => order.orderId === orderId);
      await waitFor(async () => (await atWarehouse()).items[0].qty === 2, { what: 'the warehouse to take the kettle out', timeoutMs: 10_000 });

      // the parcel leaves with two kettles, and its SHIPPED comes before the change's answer is recorded
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
      const shipped = await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-7', at: new Date().toISOString() });
      expect([shipped.status, shipped.body.status]).toEqual([200, 'SHIPPED']);
      await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });

      await waitFor(async () => (await refundsOf(orderId, 'gus'))[0].status === 'SUCCEEDED', { what: 'the refund paid back', timeoutMs: 15_000 });
      const [paid] = await refundsOf(orderId, 'gus');
      expect([paid.restockHeld, paid.amountCents]).toEqual([false, 4_000]);
      expect((await paidBack(orderId)).map((part: any) => part.amountCents)).toEqual([4_000]);
      // the kettle taken out is on sale again; the two shipped stay sold
      expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available + 1, sold: stockBefore.sold - 1 });
      const order = await system.order(orderId);
      expect([order.status, order.items[0].refundedQty, (await atWarehouse()).items]).toEqual(['SHIPPED', 1, [{ skuId: 'KETTLE', qty: 2 }]]);
    });

    it.sequential.for([
      { buyer: 'hal', second: 1, shippedReported: 'before the update job asks again' },
      { buyer: 'ida', second: 1, shippedReported: 'after the update job found the change refused as too late' },
      { buyer: 'jon', second: 2, shippedReported: 'before the update job asks again' },
    ])(
      'pays back the first of two refunds whose change the warehouse applied before the parcel left, its answer lost, and withdraws the second of $second unit(s), which came too late: the parcel reported shipped $shippedReported',
      async ({ buyer, second: secondUnits, shippedReported }, { expect }) => {
        const orderId = await inFulfilment(buyer, 3);
        const stockBefore = await kettles();
        await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_500 } });
        const atWarehouse = async () => ((await system.warehouseSim.request('GET', '/__admin/orders')).body.orders as any[]).find((order) => order.orderId === orderId);
        const refund = (reason: string, qty: number) => system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer), body: { reason, items: [{ skuId: 'KETTLE', qty }] } });
        const first = await refund('one is chipped', 1);
        expect(first.status).toBe(202);
        await waitFor(async () => (await atWarehouse()).items[0].qty === 2, { what: 'the warehouse to take the first kettle out', timeoutMs: 10_000 });
        // the second refund (of every unit left: the order is refunded whole) reaches the warehouse after the parcel left with two kettles
        const second = await refund('more are chipped', secondUnits);
        expect(second.status).toBe(202);
        await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED', notify: false } });
        const reportShipped = async () => expect((await system.signedCallback('warehouse', { orderId, event: 'SHIPPED', trackingNo: `TRK-${buyer}`, at: new Date().toISOString() })).status).toBe(200);
        if (shippedReported.startsWith('before')) await reportShipped();
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        await system.warehouseSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });

        const statusOf = async (refundId: string) => (await refundsOf(orderId, buyer)).find((one: any) => one.refundId === refundId)?.status;
        const [firstId, secondId] = [first.body.refunds[0].refundId, second.body.refunds[0].refundId];
        await waitFor(async () => (await statusOf(firstId)) === 'SUCCEEDED' && (await statusOf(secondId)) === 'WITHDRAWN', { what: 'the first refund paid back, the second withdrawn', timeoutMs: 15_000 });
        if (!shippedReported.startsWith('before')) await reportShipped();
        expect((await paidBack(orderId)).map((part: any) => part.amountCents)).toEqual([4_000]);
        expect(await kettles()).toEqual({ ...stockBefore, available: stockBefore.available + 1, sold: stockBefore.sold - 1 });
        await system.waitForStatus(orderId, 'SHIPPED');
        const order = await system.order(orderId);
        expect([order.items[0].refundedQty, (await atWarehouse()).items]).toEqual([1, [{ skuId: 'KETTLE', qty: 2 }]]);
      },
    );
  });
});
