import { ProcessRepository, noPaymentAwaitedAt, type OrderDb } from '@orders/persistence';
import { SKU_COUNTERS, StockKeys } from '@orders/stock';
import type { Cluster, Redis } from 'ioredis';
import { sql } from 'kysely';

export interface SaleUnderCheck {
  db: OrderDb;
  redis: Redis | Cluster;
  keyPrefix: string;
  /** every order id the intake answered 202 for */
  acceptedOrderIds: readonly string[];
  /** each SKU's opening stock */
  initialStock: Readonly<Record<string, number>>;
  now?: Date;
  /** how far past its deadline an order may be while its timer job is being processed */
  timerGraceMs?: number;
  /** the worker's PAYMENT_TIMEOUT_MS: how long past its deadline an order waits for a payment (a presale's balance) its buyer asked for in time */
  paymentWaitMs: number;
}

export interface SkuStockCheck {
  /** summed over the SKU's buckets */
  redis: { available: number; reserved: number; sold: number };
  /** each bucket's counters, bucket 0 first */
  buckets: Array<{ available: number; reserved: number; sold: number }>;
  ledger: { available: number; reserved: number; sold: number };
}

export interface SaleInvariants {
  /** what an operator would page about; empty when the sale is sound */
  violations: string[];
  persistedOrders: number;
  stock: Record<string, SkuStockCheck>;
}

const UNPAID = ['ACCEPTED', 'PENDING_PAYMENT', 'PENDING_DEPOSIT'];

/**
 * The promises of a sale after any fault, checked against MySQL and Redis themselves:
 * every accepted order is in MySQL exactly once and nothing else is; for every SKU,
 * Redis available + reserved + sold (summed over its buckets) equals the opening stock
 * and each counter equals what the stock ledger says, no bucket's counter is below zero
 * and no transfer between buckets is left half done; no order waits past its payment or balance deadline (a presale's, past the wait for a balance asked in time); the
 * shop keeps for each order the money of the payments that paid it (moneyKept); nothing is left in the
 * accepted set waiting for recovery.
 */
async function checkOnce(sale: SaleUnderCheck): Promise<SaleInvariants> {
  const { db, redis } = sale;
  const violations: string[] = [];
  const keys = new StockKeys(sale.keyPrefix);

  const accepted = new Set(sale.acceptedOrderIds);
  if (accepted.size !== sale.acceptedOrderIds.length) violations.push(`the intake gave out ${sale.acceptedOrderIds.length - accepted.size} order ids twice`);
  const rows = await db.selectFrom('orders').select('order_id').where('parent_order_id', 'is', null).execute();
  const persisted = new Map<string, number>();
  for (const { order_id } of rows) persisted.set(order_id, (persisted.get(order_id) ?? 0) + 1);
  const missing = [...accepted].filter((id) => !persisted.has(id));
  const unexpected = [...persisted.keys()].filter((id) => !accepted.has(id));
  const duplicated = [...persisted].filter(([, count]) => count > 1).map(([id]) => id);
  if (missing.length > 0) violations.push(`${missing.length} accepted orders are not in MySQL (e.g. ${missing.slice(0, 3).join(', ')})`);
  if (unexpected.length > 0) violations.push(`${unexpected.length} orders in MySQL were never accepted (e.g. ${unexpected.slice(0, 3).join(', ')})`);
  if (duplicated.length > 0) violations.push(`${duplicated.length} orders are in MySQL more than once (e.g. ${duplicated.slice(0, 3).join(', ')})`);
  for (const group of keys.groups()) {
    const waiting = await redis.zcard(keys.accepted(group));
    if (waiting > 0) violations.push(`${waiting} orders are still in the accepted set of ${group}, waiting for recovery`);
    const moving = await redis.zcard(keys.openTransfers(group));
    if (moving > 0) violations.push(`${moving} stock transfers from ${group} were taken and never finished`);
  }

  const stock: Record<string, SkuStockCheck> = {};
  const ledger = await ledgerStock(db, Object.keys(sale.initialStock));
  for (const [skuId, initial] of Object.entries(sale.initialStock)) {
    const inRedis = { available: 0, reserved: 0, sold: 0 };
    const buckets: SkuStockCheck['buckets'] = [];
    const bucketCount = Number((await redis.hget(keys.sku(keys.bucketGroup(0), skuId), 'buckets')) ?? 1);
    for (const group of keys.groups().slice(0, bucketCount)) {
      const [available, reserved, sold] = (await redis.hmget(keys.sku(group, skuId), 'available', 'reserved', 'sold')).map(Number) as [number, number, number];
      if (Number.isNaN(available)) violations.push(`SKU ${skuId} has no stock counters in Redis (${group})`);
      for (const [counter, units] of Object.entries({ available, reserved, sold })) {
        if (units < 0) violations.push(`SKU ${skuId}: ${counter} in ${group} is ${units}`);
      }
      buckets.push({ available, reserved, sold });
      inRedis.available += available;
      inRedis.reserved += reserved;
      inRedis.sold += sold;
    }
    const inLedger = ledger.get(skuId) ?? { available: 0, reserved: 0, sold: 0, opening: 0 };
    stock[skuId] = { redis: inRedis, buckets, ledger: { available: inLedger.available, reserved: inLedger.reserved, sold: inLedger.sold } };
    const total = inRedis.available + inRedis.reserved + inRedis.sold;
    if (total !== initial) violations.push(`SKU ${skuId}: Redis available + reserved + sold = ${total}, opening stock was ${initial}`);
    if (inLedger.opening !== initial) violations.push(`SKU ${skuId}: the ledger's stock adjustments add up to ${inLedger.opening}, opening stock was ${initial}`);
    for (const counter of SKU_COUNTERS) {
      if (inRedis[counter] !== inLedger[counter]) violations.push(`SKU ${skuId}: Redis ${counter} is ${inRedis[counter]}, the ledger says ${inLedger[counter]}`);
    }
  }

  const cutoff = new Date((sale.now ?? new Date()).getTime() - (sale.timerGraceMs ?? 5_000));
  // an order past its payment or balance deadline is not stuck while its deadline job waits for a payment asked in time, as the product has it
  const stuck = await db
    .selectFrom('orders as o')
    .select(['o.order_id', 'o.status'])
    .where((eb) =>
      eb.or([
        eb.and([eb('o.status', 'in', UNPAID), eb('o.payment_deadline', '<', cutoff), noPaymentAwaitedAt('payment', sql<Date>`${cutoff}`, sale.paymentWaitMs)]),
        eb.and([eb('o.status', '=', 'DEPOSIT_PAID'), eb('o.balance_deadline', '<', cutoff), noPaymentAwaitedAt('balance', sql<Date>`${cutoff}`, sale.paymentWaitMs)]),
      ]),
    )
    .execute();
  if (stuck.length > 0) violations.push(`${stuck.length} orders are past their deadline and still unpaid (e.g. ${stuck.slice(0, 3).map((o) => `${o.order_id} ${o.status}`).join(', ')})`);

  violations.push(...(await moneyKept(db)));

  return { violations, persistedOrders: persisted.size, stock };
}

/**
 * The shop keeps for an order what the payments that paid it brought, less its refunds: no
 * purpose (full; a presale's deposit, its balance) paid twice, and nothing of a payment that
 * paid nothing. Two attempts may both take the money (one reported failed, then taken): the
 * one that came after the order was paid, or could no longer be paid, succeeded too, and must
 * be given back whole.
 */
async function moneyKept(db: OrderDb): Promise<string[]> {
  const violations: string[] = [];
  const succeeded = await db.selectFrom('payments').select(['payment_id', 'order_id', 'amount_cents']).where('status', '=', 'SUCCEEDED').execute();
  const payments = new ProcessRepository(db);
  const applied = (await Promise.all([...new Set(succeeded.map((payment) => payment.order_id))].map((orderId) => payments.paymentsApplied(orderId)))).flat();

  const paidFor = new Set<string>();
  const twice = new Set<string>();
  for (const { order_id, purpose } of applied) {
    if (paidFor.has(`${order_id} ${purpose}`)) twice.add(order_id);
    paidFor.add(`${order_id} ${purpose}`);
  }
  if (twice.size > 0) violations.push(`${twice.size} orders were paid more than once (e.g. ${[...twice].slice(0, 3).join(', ')})`);

  const paidTheirOrder = new Set(applied.map((payment) => payment.payment_id));
  const late = succeeded.filter((payment) => !paidTheirOrder.has(payment.payment_id));
  if (late.length === 0) return violations;
  const givenBack = await db
    .selectFrom('refund_parts')
    .select(['payment_id', (eb) => eb.fn.sum<string>('amount_cents').as('cents')])
    .where('status', '=', 'SUCCEEDED')
    .where('payment_id', 'in', late.map((payment) => payment.payment_id))
    .groupBy('payment_id')
    .execute();
  const refunded = new Map(givenBack.map((part) => [part.payment_id, Number(part.cents)]));
  const kept = late.filter((payment) => (refunded.get(payment.payment_id) ?? 0) < Number(payment.amount_cents));
  if (kept.length > 0) violations.push(`${kept.length} payments came after their order was paid or closed and were not given back (e.g. ${kept.slice(0, 3).map((p) => p.payment_id).join(', ')})`);
  return violations;
}

/**
 * The ledger read as stock counters. available: every movement's sum. reserved: a
 * reservation neither released nor committed. sold: committed units (a placement line's
 * commit row carries 0, its units are the reservation's) not released since, less restocks.
 */
async function ledgerStock(db: OrderDb, skuIds: string[]): Promise<Map<string, { available: number; reserved: number; sold: number; opening: number }>> {
  const result = new Map<string, { available: number; reserved: number; sold: number; opening: number }>();
  if (skuIds.length === 0) return result;
  const rows = await db
    .selectFrom('stock_ledger')
    .select(['sku_id', 'kind', 'ref', (eb) => eb.fn.sum<number>('qty').as('qty')])
    .where('sku_id', 'in', skuIds)
    .groupBy(['sku_id', 'kind', 'ref'])
    .execute();
  const movements = new Map<string, Map<string, Partial<Record<string, number>>>>();
  for (const row of rows) {
    const sku = result.get(row.sku_id) ?? { available: 0, reserved: 0, sold: 0, opening: 0 };
    result.set(row.sku_id, sku);
    sku.available += Number(row.qty);
    if (row.kind === 'adjust') sku.opening += Number(row.qty);
    if (row.kind === 'restock') sku.sold -= Number(row.qty);
    const byRef = movements.get(row.sku_id) ?? new Map<string, Partial<Record<string, number>>>();
    movements.set(row.sku_id, byRef);
    byRef.set(row.ref, { ...byRef.get(row.ref), [row.kind]: Number(row.qty) });
  }
  for (const [skuId, byRef] of movements) {
    const sku = result.get(skuId)!;
    for (const kinds of byRef.values()) {
      const reservedUnits = -(kinds.reserve ?? 0);
      if (kinds.release !== undefined) continue;
      if (kinds.commit !== undefined) sku.sold += reservedUnits - kinds.commit;
      else sku.reserved += reservedUnits;
    }
  }
  return result;
}

/**
 * The sale's promises once the system has settled. The steps after an order's commit (its
 * deadline job, its removal from the accepted set) trail MySQL by a moment, longer on a
 * busy box, so a check made as the last order lands can see them still under way: checks
 * again every 250 ms while anything is violated, for up to `settleMs`, and returns the last
 * check (a real violation stays and is reported).
 */
export async function settledSaleInvariants(sale: SaleUnderCheck, settleMs = 15_000): Promise<SaleInvariants> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const checked = await checkOnce(sale);
    if (checked.violations.length === 0 || Date.now() >= deadline) return checked;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
