import { CouponUsedUp } from '@orders/domain';
import { Inventory, type PersistedReservation, type Reservation } from '@orders/stock';
import { buyerAddress, reservationOf } from '@orders/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, testKeyPrefix } from './support/test-keys.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * The reservation record of a persisted order that Redis lost, put back from MySQL by the
 * stock repair (`reconcile --repair`) and the settle job, so that the order's commit or
 * release runs as it would have.
 */
describe('a reservation record put back after Redis lost it', () => {
  const prefix = testKeyPrefix('restore');
  // the scripts expire keys at times derived from `now` on Redis's own clock, so `now` is today
  const now = new Date();
  const timeouts = { standardPaymentTimeoutMs: 30 * MINUTE, flashSalePaymentTimeoutMs: 10 * MINUTE, idempotencyTtlMs: DAY, presaleBalanceTimeoutMs: 30 * DAY };
  let redis: Redis;
  let inventory: Inventory;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    inventory = new Inventory(redis, prefix, timeouts);
    await inventory.initSku({ skuId: 'LAMP', available: 100, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    await inventory.initSku({ skuId: 'NEXT-CONSOLE', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0, orderType: 'presale' });
    await inventory.publishCoupon({ code: 'TWICE', perBuyerLimit: 2, startsAt: new Date(now.getTime() - DAY), endsAt: new Date(now.getTime() + 365 * DAY) });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const reserve = (userId: string, skuId: string, couponCode: string | null = null) => inventory.reserveStock(reservationOf(userId, [{ skuId, qty: 1 }], { now, payload: { address: buyerAddress, couponCode } }));
  const recordKey = (orderId: string) => inventory.keys.order(inventory.keys.groupOfOrder(orderId), orderId);
  /** The order as MySQL has it, its record lost from Redis. */
  const lost = async ({ order }: Reservation, overrides: Partial<PersistedReservation> = {}): Promise<PersistedReservation> => {
    await redis.del(recordKey(order.orderId));
    return {
      orderId: order.orderId,
      userId: order.userId,
      type: order.type,
      address: order.address,
      lines: order.items.map((line) => ({ ...line, deduction: 'placement' })),
      couponCode: order.couponCode,
      acceptedAt: new Date(order.acceptedAt),
      paymentDeadline: new Date(order.paymentDeadline),
      ...overrides,
    };
  };

  it("keeps a presale's record past its balance deadline, as long as the record it replaces", async () => {
    const presale = await reserve('ann', 'NEXT-CONSOLE');
    expect(presale.order.type).toBe('presale');
    const keptAtCheckout = await redis.pttl(recordKey(presale.order.orderId));

    expect(await inventory.restoreReservation(await lost(presale))).toBe(true);
    const kept = await redis.pttl(recordKey(presale.order.orderId));
    // the balance is due at most 30 days after the deposit's deadline
    expect(kept).toBeGreaterThan(Date.parse(presale.order.paymentDeadline) + 30 * DAY - Date.now());
    expect(Math.abs(kept - keptAtCheckout)).toBeLessThan(MINUTE);
  });

  it('keeps a record put back after the one it replaces would have expired a week, for the commit or release that needs it', async () => {
    const late = await reserve('bob', 'LAMP');
    const longAgo = { acceptedAt: new Date(now.getTime() - 9 * DAY), paymentDeadline: new Date(now.getTime() - 9 * DAY + 30 * MINUTE) };

    expect(await inventory.restoreReservation(await lost(late, longAgo))).toBe(true);
    expect(await redis.pttl(recordKey(late.order.orderId))).toBeGreaterThan(7 * DAY - MINUTE);
    expect((await inventory.commitStock(late.order.orderId)).status).toBe('committed');
  });

  it("gives a closed order's coupon use back once when the record is put back from a read of MySQL made before the close", async () => {
    const closed = await reserve('cal', 'LAMP', 'TWICE');
    await reserve('cal', 'LAMP', 'TWICE');
    // the repair reads the order open, holding its use, from MySQL ...
    const readBeforeClose = await lost(closed);
    // ... the buyer cancels it: without its record, the marker gives the use back
    expect(await inventory.releaseStock(closed.order.orderId, 'cal', 'cancelled', 'TWICE')).toBe(false);
    // ... the repair puts the record back, and finishes the order the ledger has closed
    await inventory.restoreReservation(readBeforeClose);
    expect(await inventory.releaseStock(closed.order.orderId, 'cal', 'cancelled', 'TWICE')).toBe(true);

    // cal holds one use of two, with the order not cancelled
    expect((await reserve('cal', 'LAMP', 'TWICE')).created).toBe(true);
    await expect(reserve('cal', 'LAMP', 'TWICE')).rejects.toBeInstanceOf(CouponUsedUp);
  });
});
