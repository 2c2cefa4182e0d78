// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { createHmac } from 'node:crypto';
import { presaleDepositCents } from '@orders/domain';
import { ProcessRepository } from '@orders/persistence';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const WINDOW_MS = 10_000;
const BALANCE_MS = 8_000;
const MINUTES_10 = 10 * 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A deadline runs from the step that starts it (a presale's deposit, its balance deadline; a
 * shipment, the buyer's time to confirm; a delivery, the after-sales window), and its timer
 * decides by MySQL's clock: an api host whose clock runs 10 minutes ahead or behind records
 * that step at MySQL's time, so that the buyer gets the whole time, neither less nor more.
 * Each test has its own buyer and order, so they run side by side, the longest first.
 */
describe.concurrent("the steps that start an order's deadline, taken by api hosts whose clocks are off, are recorded at MySQL's time", () => {
  let system: OrderSystem;
  const hosts: Record<'ahead' | 'behind', { api: ApiUnderTest; skewMs: number }> = {} as never;

  beforeAll(async () => {
    system = await startOrderSystem('timer_start_clock', {
      AFTER_SALES_WINDOW_MS: String(WINDOW_MS),
      AUTO_CONFIRM_MS: '120000',
      PRESALE_BALANCE_TIMEOUT_MS: String(BALANCE_MS),
      PRESALE_DEPOSIT_PERCENT: '20',
      OVERDUE_SWEEP_INTERVAL_MS: '500',
    });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
    await system.createSku({ ...sku, skuId: 'LAMP', priceCents: 2_400, stock: 40 });
    await system.createSku({ ...sku, skuId: 'NEXT-CONSOLE', priceCents: 50_000, stock: 10, orderType: 'presale' });
    for (const [name, skewMs] of [
      ['ahead', MINUTES_10],
      ['behind', -MINUTES_10],
    ] as const) {
      hosts[name] = { api: await startApi(system.env, { clock: () => new Date(Date.now() + skewMs) }), skewMs };
    }
  }, 60_000);
  afterAll(async () => {
    await hosts.ahead?.api.close();
    await hosts.behind?.api.close();
    await system?.close();
  });

  const mysqlNow = async () => (await sql<{ now: Date }>`SELECT UTC_TIMESTAMP(3) AS now`.execute(system.env.db)).rows[0]!.now.getTime();
  /** What `act` does, and MySQL's time just before and just after it. */
  async function timed<T>(act: () => Promise<T>): Promise<{ result: T; from: number; to: number }> {
    const from = await mysqlNow();
    const result = await act();
    return { result, from, to: await mysqlNow() };
  }
  /** The payment or warehouse system's signed callback to this host, `at` its time by the host's clock (the sender agrees with it). */
  function callback(host: 'ahead' | 'behind', kind: 'payment' | 'warehouse', body: Record<string, unknown>) {
    const { api, skewMs } = hosts[host];
    const raw = JSON.stringify({ ...body, at: new Date(Date.now() + skewMs).toISOString() });
    const secret = kind === 'payment' ? system.env.config.PAYMENT_CALLBACK_SECRET : system.env.config.WAREHOUSE_CALLBACK_SECRET;
    return api.request('POST', `/v1/callbacks/${kind}`, { body: raw, headers: { 'x-signature': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` } });
  }
  const entered = (order: any, status: string) => Date.parse(order.history.findLast((step: any) => step.to === status).at);
  /** The buyer's return of one lamp; its reason tells it from an earlier one (the same body answers the same return). */
  const askReturn = (buyer: string, orderId: string, reason: string) =>
    system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason, items: [{ skuId: 'LAMP', qty: 1 }] } });

  /** An order of two lamps, paid and shipped by the warehouse: SHIPPED. */
  const shipped = (buyer: string) => system.shipped(buyer, [{ skuId: 'LAMP', qty: 2 }]);
  /** The same, delivered, with the buyer's return of one lamp asked: RETURN_REQUESTED. */
  async function returnAsked(buyer: string): Promise<{ orderId: string; returnId: string }> {
    const orderId = await shipped(buyer);
    expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'DELIVERED' } })).body.callbackStatus).toBe(200);
    await system.waitForStatus(orderId, 'DELIVERED');
    const asked = await askReturn(buyer, orderId, 'too dim');
    expect([asked.status, asked.body.status]).toEqual([202, 'REQUESTED']);
    return { orderId, returnId: asked.body.returnId };
  }

  /** Each way an order comes to DELIVERED through an api host, its after-sales window starting. */
  const deliveries: Record<string, (host: 'ahead' | 'behind', buyer: string) => Promise<{ orderId: string; from: number; to: number }>> = {
    'the warehouse reports it delivered': async (host, buyer) => {
      const orderId = await shipped(buyer);
      const { result, from, to } = await timed(() => callback(host, 'warehouse', { orderId, event: 'DELIVERED' }));
      expect([result.status, result.body.status]).toEqual([200, 'DELIVERED']);
      return { orderId, from, to };
    },
    'the buyer confirms receipt': async (host, buyer) => {
      const orderId = await shipped(buyer);
      const { result, from, to } = await timed(() => hosts[host].api.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: hosts[host].api.token(buyer), body: {} }));
      expect([result.status, result.body.status]).toEqual([200, 'DELIVERED']);
      return { orderId, from, to };
    },
    'the warehouse receives a return of one of the two lamps': async (host, buyer) => {
      const { orderId, returnId } = await returnAsked(buyer);
      expect((await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/approve`, { token: system.token('shop', 'merchant') })).status).toBe(200);
      const { result, from, to } = await timed(() => callback(host, 'warehouse', { orderId, event: 'RETURN_RECEIVED', returnId }));
      expect([result.status, result.body.status]).toEqual([200, 'DELIVERED']);
      return { orderId, from, to };
    },
    'the merchant refuses the return': async (host, buyer) => {
      const { orderId, returnId } = await returnAsked(buyer);
      const { result, from, to } = await timed(() => hosts[host].api.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: hosts[host].api.token('shop', 'merchant') }));
      expect([result.status, result.body.status]).toEqual([200, 'REFUSED']);
      return { orderId, from, to };
    },
  };

  it("an order delivered through a host whose clock runs 10 minutes ahead completes once its window closes by MySQL's clock", async () => {
    const { orderId } = await deliveries['the warehouse reports it delivered']!('ahead', 'ahead-completion');
    const deliveredAt = entered(await system.order(orderId), 'DELIVERED');
    const completed = await system.waitForStatus(orderId, 'COMPLETED', WINDOW_MS + 15_000);
    expect(completed.history.at(-1)).toMatchObject({ from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actor: 'system' });
    expect(entered(completed, 'COMPLETED')).toBeGreaterThanOrEqual(deliveredAt + WINDOW_MS);
  });

  it("an order shipped through a host whose clock runs 10 minutes behind waits AUTO_CONFIRM_MS by MySQL's clock for the buyer to confirm", async () => {
    const orderId = await system.checkout('behind-ship', [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('behind-ship'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const { result, from, to } = await timed(() => callback('behind', 'warehouse', { orderId, event: 'SHIPPED', trackingNo: 'TRK-1' }));
    expect([result.status, result.body.status]).toEqual([200, 'SHIPPED']);
    // the overdue sweep ran a few times meanwhile: not confirmed for the buyer
    await sleep(2_000);
    const shippedOrder = await system.order(orderId);
    expect(shippedOrder.status).toBe('SHIPPED');
    expect(entered(shippedOrder, 'SHIPPED')).toBeGreaterThanOrEqual(from);
    expect(entered(shippedOrder, 'SHIPPED')).toBeLessThanOrEqual(to);
  });

  describe.each(['behind', 'ahead'] as const)('through a host whose clock runs 10 minutes %s', (host) => {
    it.each(Object.keys(deliveries))("%s: the after-sales window starts then by MySQL's clock, and the buyer's return is taken in it", async (how) => {
      const buyer = `${host}-${Object.keys(deliveries).indexOf(how)}`;
      const { orderId, from, to } = await deliveries[how]!(host, buyer);
      const asked = await askReturn(buyer, orderId, 'the other one is too dim too');
      expect([asked.status, asked.body.code, asked.body.status]).toEqual([202, undefined, 'REQUESTED']);
      const delivered = await system.order(orderId);
      expect(entered(delivered, 'DELIVERED')).toBeGreaterThanOrEqual(from);
      expect(entered(delivered, 'DELIVERED')).toBeLessThanOrEqual(to);
    });

    it("a deposit taken: the balance is due PRESALE_BALANCE_TIMEOUT_MS later by MySQL's clock, and the deposit is forfeited then, not before", async () => {
      const buyer = `${host}-presale`;
      const orderId = await system.checkout(buyer, [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
      const pending = await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
      const amountCents = presaleDepositCents(pending.amounts.payableCents, system.env.config.PRESALE_DEPOSIT_PERCENT);
      const { payment } = await new ProcessRepository(system.env.db).openPayment({ orderId, purpose: 'deposit', method: 'card', amountCents, at: new Date() });
      const { result, from, to } = await timed(() =>
        callback(host, 'payment', { orderId, paymentId: payment.payment_id, transactionId: `tx-${payment.payment_id}`, status: 'SUCCEEDED', amountCents }),
      );
      expect([result.status, result.body.status]).toEqual([200, 'DEPOSIT_PAID']);
      // the overdue sweep ran a few times meanwhile: the buyer may still pay the balance
      await sleep(2_000);
      const depositPaid = await system.order(orderId);
      const checkedAt = await mysqlNow();
      expect(depositPaid.status).toBe('DEPOSIT_PAID');
      const deadline = Date.parse(depositPaid.balanceDeadline);
      expect(deadline).toBeGreaterThanOrEqual(from + BALANCE_MS);
      expect(deadline).toBeLessThanOrEqual(to + BALANCE_MS);
      expect(deadline - entered(depositPaid, 'DEPOSIT_PAID')).toBeGreaterThanOrEqual(BALANCE_MS);
      expect(checkedAt).toBeLessThan(deadline);

      const forfeited = await system.waitForStatus(orderId, 'DEPOSIT_FORFEITED', BALANCE_MS + 15_000);
      expect(forfeited.history.at(-1)).toMatchObject({ from: 'DEPOSIT_PAID', action: 'expire_balance', to: 'DEPOSIT_FORFEITED', actor: 'system' });
      expect(entered(forfeited, 'DEPOSIT_FORFEITED')).toBeGreaterThanOrEqual(deadline);
    });
  });
});
