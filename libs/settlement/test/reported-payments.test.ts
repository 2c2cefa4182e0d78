import { priceOrder, type Sku } from '@orders/domain';
import { createMetrics } from '@orders/metrics';
import { CatalogRepository, OrderRepository, ProcessRepository } from '@orders/persistence';
import { createOrderQueues, type OrderQueues } from '@orders/queues';
import { buyerAddress, createTestEnv, type TestEnv } from '@orders/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleReportedPayment, type SettlementDeps } from '../src/index.js';

/**
 * A payment settled as the payment system reports it, by its callback (the api) or looked up under
 * its id once its callbacks were lost (the workers): each report settles it once, as any other would.
 */
describe('a payment settled as the payment system reports it', () => {
  let env: TestEnv;
  let queues: OrderQueues;
  let deps: SettlementDeps;
  const log = pino({ level: 'silent' });
  const lamp: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null };

  beforeAll(async () => {
    env = await createTestEnv('reported_payments');
    queues = createOrderQueues(env.redis, { prefix: env.config.QUEUE_PREFIX, attempts: 1, backoffMs: 100 });
    deps = { db: env.db, orders: new OrderRepository(env.db), queues, metrics: createMetrics({ app: 'test' }), clock: () => new Date(), config: env.config };
    await new CatalogRepository(env.db).createSku(lamp, 10, 'opening-LAMP', async () => undefined);
  });
  afterAll(async () => {
    await queues?.close();
    await env?.cleanup();
  });

  /** An unpaid order of one lamp (24.00) and its buyer's card payment, pending. */
  const owed = async (orderId: string) => {
    const now = new Date();
    const accepted = { orderId, userId: 'ann', type: 'standard' as const, items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress, couponCode: null, acceptedAt: now.toISOString(), paymentDeadline: new Date(now.getTime() + 600_000).toISOString() };
    await deps.orders.persistAcceptedOrders([{ accepted, priced: priceOrder('standard', accepted.items, new Map([['LAMP', lamp]]), now) }], now);
    const { payment } = await new ProcessRepository(env.db).openPayment({ orderId, purpose: 'full', method: 'card', amountCents: 2_400, at: now });
    return { order: (await deps.orders.findOrderRow(orderId))!, payment };
  };
  const paymentOf = async (paymentId: string) => (await new ProcessRepository(env.db).findPayment(paymentId))!;
  const mismatches = async (outcome: string) => (await deps.metrics.paymentAmountMismatches.get()).values.find((value) => value.labels.outcome === outcome)?.value ?? 0;

  it('pays its order when reported taken for its amount, once however often it is reported', async () => {
    const { order, payment } = await owed('01JSETTLE0000000000000000A');
    const report = { status: 'SUCCEEDED', transactionId: 'tx-a', amountCents: 2_400, at: new Date() } as const;
    expect(await settleReportedPayment(deps, order, payment, report, log)).toEqual({ changed: true, status: 'PAID' });
    expect(await settleReportedPayment(deps, order, await paymentOf(payment.payment_id), report, log)).toEqual({ changed: false, status: 'PAID' });
    expect(await paymentOf(payment.payment_id)).toMatchObject({ status: 'SUCCEEDED', transaction_id: 'tx-a' });
  });

  it('fails it when reported declined, whatever amount the decline names, counting a decline of another amount once: the order stays payable', async () => {
    const { order, payment } = await owed('01JSETTLE0000000000000000B');
    const before = await mismatches('declined');
    const report = { status: 'FAILED', transactionId: 'tx-b', amountCents: 999, at: new Date() } as const;
    expect(await settleReportedPayment(deps, order, payment, report, log)).toEqual({ changed: true, status: 'PENDING_PAYMENT' });
    expect(await settleReportedPayment(deps, order, payment, report, log)).toEqual({ changed: false, status: 'PENDING_PAYMENT' });
    expect([(await paymentOf(payment.payment_id)).status, (await mismatches('declined')) - before]).toEqual(['FAILED', 1]);
  });

  it('gives it back whole when reported taken for another amount: the order stays payable, its refund job queued', async () => {
    const { order, payment } = await owed('01JSETTLE0000000000000000C');
    const before = await mismatches('given_back');
    const report = { status: 'SUCCEEDED', transactionId: 'tx-c', amountCents: 2_500, at: new Date() } as const;
    expect(await settleReportedPayment(deps, order, payment, report, log)).toEqual({ changed: true, status: 'PENDING_PAYMENT' });
    expect([(await paymentOf(payment.payment_id)).status, (await mismatches('given_back')) - before]).toEqual(['SUCCEEDED', 1]);
    const refundJobs = await queues.payments.getJobs(['waiting', 'delayed', 'prioritized']);
    expect(refundJobs.some((job) => JSON.stringify(job.data).includes(payment.payment_id))).toBe(true);
  });
});
