import { DomainError, type AcceptedOrder, type Coupon, type MemberLevel, type PricingRules, type ThresholdPromotion } from '@orders/domain';
import type { OrderDb } from './connection.js';
import { isDuplicateKey } from './mysql-errors.js';

export class PricingRuleExists extends DomainError {
  readonly code = 'CONFLICT';
  constructor(what: string) {
    super(`${what} already exists`);
  }
}

export class UnknownMemberLevel extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(level: string) {
    super(`There is no member level '${level}'`);
  }
}

/** Promotions, coupons, member levels and shipping fees: what workers price orders with besides the catalog. */
export class PricingRepository {
  constructor(private readonly db: OrderDb) {}

  async createPromotion(promotion: ThresholdPromotion): Promise<void> {
    try {
      await this.db
        .insertInto('promotions')
        .values({
          promotion_id: promotion.promotionId,
          title: promotion.title,
          threshold_cents: promotion.thresholdCents,
          off_cents: promotion.offCents,
          sku_ids: promotion.skuIds === null ? null : JSON.stringify(promotion.skuIds),
          starts_at: promotion.startsAt,
          ends_at: promotion.endsAt,
        })
        .execute();
    } catch (error) {
      if (isDuplicateKey(error)) throw new PricingRuleExists(`Promotion ${promotion.promotionId}`);
      throw error;
    }
  }

  /**
   * Inserts the coupon, then runs `publish` (checkout's copy in Redis) before committing:
   * if publishing fails nothing is committed and the request can be repeated.
   */
  async createCoupon(coupon: Coupon, publish: () => Promise<void>): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('coupons')
          .values({
            code: coupon.code,
            kind: coupon.kind,
            percent_off: coupon.percentOff,
            off_cents: coupon.offCents,
            min_spend_cents: coupon.minSpendCents,
            per_buyer_limit: coupon.perBuyerLimit,
            starts_at: coupon.startsAt,
            ends_at: coupon.endsAt,
          })
          .execute();
        await publish();
      });
    } catch (error) {
      if (isDuplicateKey(error)) throw new PricingRuleExists(`Coupon ${coupon.code}`);
      throw error;
    }
  }

  async setMemberLevel(level: MemberLevel): Promise<void> {
    await this.db
      .insertInto('member_levels')
      .values({ level: level.level, discount_percent: level.discountPercent, free_shipping: level.freeShipping })
      .onDuplicateKeyUpdate({ discount_percent: level.discountPercent, free_shipping: level.freeShipping })
      .execute();
  }

  /** Throws UnknownMemberLevel (changing nothing) for a level that was never defined. */
  async setMember(userId: string, level: string): Promise<void> {
    const known = await this.db.selectFrom('member_levels').select('level').where('level', '=', level).executeTakeFirst();
    if (!known) throw new UnknownMemberLevel(level);
    await this.db.insertInto('members').values({ user_id: userId, level }).onDuplicateKeyUpdate({ level }).execute();
  }

  async setShippingFee(warehouseId: string, feeCents: number): Promise<void> {
    await this.db.insertInto('warehouse_shipping').values({ warehouse_id: warehouseId, fee_cents: feeCents }).onDuplicateKeyUpdate({ fee_cents: feeCents }).execute();
  }

  /**
   * The rules each order of a batch is priced with. A coupon is offered to an order only
   * while its buyer has uses left, counting the orders of this batch that come before it.
   */
  async rulesFor(orders: readonly AcceptedOrder[], warehouseIds: readonly string[]): Promise<Map<string, PricingRules>> {
    const codes = [...new Set(orders.flatMap((o) => (o.couponCode ? [o.couponCode] : [])))];
    const userIds = [...new Set(orders.map((o) => o.userId))];
    const earliest = new Date(Math.min(...orders.map((o) => Date.parse(o.acceptedAt))));
    const [promotionRows, couponRows, memberRows, feeRows, usedRows] = await Promise.all([
      this.db.selectFrom('promotions').selectAll().where('ends_at', '>', earliest).execute(),
      codes.length === 0 ? [] : this.db.selectFrom('coupons').selectAll().where('code', 'in', codes).execute(),
      this.db
        .selectFrom('members')
        .innerJoin('member_levels', 'member_levels.level', 'members.level')
        .select(['members.user_id', 'member_levels.level', 'member_levels.discount_percent', 'member_levels.free_shipping'])
        .where('members.user_id', 'in', userIds)
        .execute(),
      warehouseIds.length === 0 ? [] : this.db.selectFrom('warehouse_shipping').selectAll().where('warehouse_id', 'in', [...new Set(warehouseIds)]).execute(),
      codes.length === 0
        ? []
        : this.db
            .selectFrom('coupon_redemptions')
            .select(['code', 'user_id', 'order_id'])
            .where('code', 'in', codes)
            .where('user_id', 'in', userIds)
            .where('status', '=', 'used')
            .execute(),
    ]);
    const promotions: ThresholdPromotion[] = promotionRows.map((row) => ({
      promotionId: row.promotion_id,
      title: row.title,
      thresholdCents: Number(row.threshold_cents),
      offCents: Number(row.off_cents),
      skuIds: row.sku_ids === null ? null : (JSON.parse(row.sku_ids) as string[]),
      startsAt: row.starts_at,
      endsAt: row.ends_at,
    }));
    const coupons = new Map(
      couponRows.map((row): [string, Coupon] => [
        row.code,
        {
          code: row.code,
          kind: row.kind,
          percentOff: row.percent_off,
          offCents: Number(row.off_cents),
          minSpendCents: Number(row.min_spend_cents),
          perBuyerLimit: row.per_buyer_limit,
          startsAt: row.starts_at,
          endsAt: row.ends_at,
        },
      ]),
    );
    const members = new Map(memberRows.map((row) => [row.user_id, { level: row.level, discountPercent: row.discount_percent, freeShipping: Boolean(row.free_shipping) }]));
    const shippingFeeCents = new Map(feeRows.map((row) => [row.warehouse_id, Number(row.fee_cents)]));
    const orderIds = new Set(orders.map((o) => o.orderId));
    // uses by earlier orders; an order of this batch already persisted (a redelivery) is counted once, as itself
    const used = new Map<string, number>();
    for (const row of usedRows) if (!orderIds.has(row.order_id)) used.set(`${row.code}\u0000${row.user_id}`, (used.get(`${row.code}\u0000${row.user_id}`) ?? 0) + 1);
    const rules = new Map<string, PricingRules>();
    for (const order of orders) {
      let coupon = order.couponCode ? (coupons.get(order.couponCode) ?? null) : null;
      if (coupon) {
        const key = `${coupon.code}\u0000${order.userId}`;
        const uses = used.get(key) ?? 0;
        if (uses >= coupon.perBuyerLimit) coupon = null;
        else used.set(key, uses + 1);
      }
      rules.set(order.orderId, { promotions, coupon, member: members.get(order.userId) ?? null, shippingFeeCents });
    }
    return rules;
  }

  async redemptions(orderId: string): Promise<Array<{ code: string; status: string }>> {
    return this.db.selectFrom('coupon_redemptions').select(['code', 'status']).where('order_id', '=', orderId).execute();
  }
}
