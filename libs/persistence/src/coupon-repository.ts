import type { OrderDb } from './connection.js';

/** A coupon as the checkout needs it, with the orders that hold one of its uses. */
export interface CouponInForce {
  code: string;
  perBuyerLimit: number;
  totalLimit: number;
  startsAt: Date;
  endsAt: Date;
  /** Orders in MySQL that redeemed it and have not given the use back. */
  redemptions: Array<{ orderId: string; userId: string }>;
  /** Orders in MySQL that gave their use back (cancelled, expired) since the `givenBackSince` asked for. */
  givenBack: Array<{ orderId: string; userId: string }>;
}

/** Coupons read back from MySQL, for publishing them to Redis again after Redis lost them. */
export class CouponRepository {
  constructor(private readonly db: OrderDb) {}

  /** The coupons running at `now` that have a total limit, by code: what the coupon gauges read. */
  async limitedRunning(now: Date): Promise<Array<{ code: string; totalLimit: number }>> {
    const rows = await this.db
      .selectFrom('coupons')
      .select(['code', 'total_limit'])
      .where('total_limit', 'is not', null)
      .where('starts_at', '<=', now)
      .where('ends_at', '>', now)
      .orderBy('code')
      .execute();
    return rows.map((row) => ({ code: row.code, totalLimit: Number(row.total_limit) }));
  }

  /** Every coupon not yet ended (running or still to start), with its uses, and those given back since `givenBackSince`. */
  async inForce(now: Date, givenBackSince: Date = now): Promise<CouponInForce[]> {
    const coupons = await this.db.selectFrom('coupons').select(['code', 'per_buyer_limit', 'total_limit', 'starts_at', 'ends_at']).where('ends_at', '>', now).orderBy('code').execute();
    if (coupons.length === 0) return [];
    const rows = await this.db
      .selectFrom('coupon_redemptions')
      .select(['code', 'order_id', 'user_id', 'status'])
      .where('code', 'in', coupons.map((coupon) => coupon.code))
      .where((eb) => eb.or([eb('status', '=', 'used'), eb.and([eb('status', '=', 'restored'), eb('at', '>=', givenBackSince)])]))
      .execute();
    const used = rows.filter((row) => row.status === 'used');
    const givenBack = rows.filter((row) => row.status === 'restored');
    return coupons.map((coupon) => ({
      code: coupon.code,
      perBuyerLimit: coupon.per_buyer_limit,
      totalLimit: coupon.total_limit,
      startsAt: coupon.starts_at,
      endsAt: coupon.ends_at,
      redemptions: used.filter((row) => row.code === coupon.code).map((row) => ({ orderId: row.order_id, userId: row.user_id })),
      givenBack: givenBack.filter((row) => row.code === coupon.code).map((row) => ({ orderId: row.order_id, userId: row.user_id })),
    }));
  }

  /**
   * The orders among `orderIds` whose coupon use MySQL records: accepted and persisted, whether
   * they hold the use still or gave it back since through their own cancel or expiry.
   */
  async redeemedAmong(orderIds: readonly string[]): Promise<Set<string>> {
    if (orderIds.length === 0) return new Set();
    const rows = await this.db.selectFrom('coupon_redemptions').select('order_id').where('order_id', 'in', orderIds).execute();
    return new Set(rows.map((row) => row.order_id));
  }
}
