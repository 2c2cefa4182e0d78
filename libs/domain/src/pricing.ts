import { isFlashSaleActive, type Sku } from './catalog.js';
import { DomainError, UnknownSku } from './errors.js';
import type { OrderLineRequest } from './order.js';
import type { OrderType } from './order-process.js';
import { shipsParcels } from './processes/index.js';
import { allocateByLargestRemainder, fulfilmentKey, percentOf, type SplittableLine } from './splitting.js';

/** Spend `thresholdCents` on the lines it covers, get `offCents` off them (once per order). */
export interface ThresholdPromotion {
  promotionId: string;
  title: string;
  thresholdCents: number;
  offCents: number;
  /** the SKUs it covers; null: every line */
  skuIds: readonly string[] | null;
  startsAt: Date;
  endsAt: Date;
}

export interface Coupon {
  code: string;
  kind: 'percent' | 'fixed';
  /** kind percent: whole percent off (1-100) */
  percentOff: number;
  /** kind fixed: cents off */
  offCents: number;
  minSpendCents: number;
  /** how many orders of one buyer may use it */
  perBuyerLimit: number;
  /** how many orders may hold a use of it at once, all buyers together (the first so many); absent or 0: no limit */
  totalLimit?: number;
  startsAt: Date;
  endsAt: Date;
}

export interface MemberLevel {
  level: string;
  discountPercent: number;
  freeShipping: boolean;
}

/** Everything besides the catalog that an order's price depends on, as it stood when it was accepted. */
export interface PricingRules {
  promotions: readonly ThresholdPromotion[];
  /** the coupon the buyer entered, if it exists and the buyer still has a use of it */
  coupon: Coupon | null;
  member: MemberLevel | null;
  /** the shipping fee of each warehouse a parcel leaves from; a warehouse not listed ships free */
  shippingFeeCents: ReadonlyMap<string, number>;
}

export const NO_PRICING_RULES: PricingRules = { promotions: [], coupon: null, member: null, shippingFeeCents: new Map() };

/** Where a share of a line's discount came from. */
export interface DiscountShare {
  source: 'member' | 'promotion' | 'coupon';
  /** member level, promotion id or coupon code */
  ref: string;
  cents: number;
}

export interface PricedLine {
  lineNo: number;
  skuId: string;
  title: string;
  merchantId: string;
  channel: Sku['channel'];
  warehouseId: string;
  deduction: Sku['deduction'];
  qty: number;
  listPriceCents: number;
  unitPriceCents: number;
  discountCents: number;
  /** the line's share of its warehouse's shipping fee */
  shippingCents: number;
  /** unitPriceCents × qty − discountCents + shippingCents: what the line pays, and the most it can refund */
  payableCents: number;
  discounts: DiscountShare[];
}

export interface OrderAmounts {
  subtotalCents: number;
  discountCents: number;
  shippingCents: number;
  payableCents: number;
}

/** What the order used, as it records it. */
export interface AppliedBenefits {
  promotions: Array<{ promotionId: string; discountCents: number }>;
  coupon: { code: string; discountCents: number } | null;
  member: { level: string; discountCents: number; freeShipping: boolean } | null;
}

export interface PricedOrder {
  lines: PricedLine[];
  amounts: OrderAmounts;
  applied: AppliedBenefits;
}

const isActive = (window: { startsAt: Date; endsAt: Date }, at: Date) => window.startsAt.getTime() <= at.getTime() && at.getTime() < window.endsAt.getTime();

/**
 * Prices an order from the catalog and the rules as they stood when the order was
 * accepted: the flash-sale price applies if the sale was running at `acceptedAt`, even
 * when the worker persists the order after the sale closed. Client-sent prices never exist.
 *
 * Discounts stack in a fixed order, each on what the lines still cost after the one
 * before: the member discount (per line, rounded down), then each threshold promotion
 * whose threshold its lines reach, in the order of their ids (one promotion's discount can
 * take the lines below another's threshold, so the order is part of the price, never the
 * order the rules were read in), then the coupon if the order reaches its minimum
 * spend. A member gets the promotions and the coupon the same cart earns a buyer without a
 * level (the cart priced without the member discount decides them: judged on the member's own
 * shares, an earlier promotion's split can leave a line a cent short of the next threshold), so
 * a member never loses one to their level and never pays more than a buyer without one. A
 * flash-sale line is already at its lowest price and takes none of them.
 * Every order-level discount and every warehouse's shipping fee is allocated to its
 * lines by largest remainder in proportion to what each line still costs, so a share
 * never exceeds its line and the lines add up to the order exactly. An order whose
 * type's life has no shipment (its type's table has no ship step: a virtual order)
 * sends no parcel and pays no shipping.
 */
export function priceOrder(
  type: OrderType,
  items: readonly OrderLineRequest[],
  catalog: ReadonlyMap<string, Sku>,
  acceptedAt: Date,
  rules: PricingRules = NO_PRICING_RULES,
): PricedOrder {
  const lines = items.map((item, index) => {
    const sku = catalog.get(item.skuId);
    if (!sku) throw new UnknownSku(item.skuId);
    const inFlashSale = sku.flashSale !== null && isFlashSaleActive(sku, acceptedAt);
    const unitPriceCents = inFlashSale ? sku.flashSale!.priceCents : sku.priceCents;
    const line: PricedLine = {
      lineNo: index + 1,
      skuId: sku.skuId,
      title: sku.title,
      merchantId: sku.merchantId,
      channel: sku.channel,
      warehouseId: sku.warehouseId,
      deduction: sku.deduction,
      qty: item.qty,
      listPriceCents: sku.priceCents,
      unitPriceCents,
      discountCents: 0,
      shippingCents: 0,
      payableCents: unitPriceCents * item.qty,
      discounts: [],
    };
    return { line, discountable: !inFlashSale };
  });
  const remaining = (line: PricedLine) => line.unitPriceCents * line.qty - line.discountCents;
  const earned = rules.member ? priceOrder(type, items, catalog, acceptedAt, { ...rules, member: null }).applied : null;
  const promotionsEarned = earned && new Set(earned.promotions.map((p) => p.promotionId));
  const give = (line: PricedLine, share: DiscountShare) => {
    if (share.cents === 0) return;
    line.discountCents += share.cents;
    line.discounts.push(share);
  };
  /** Spreads `cents` (at most what the lines still cost) over them; returns what was given. */
  const spread = (covered: PricedLine[], cents: number, source: DiscountShare['source'], ref: string) => {
    const parts = allocateByLargestRemainder(cents, covered.map(remaining));
    covered.forEach((line, i) => give(line, { source, ref, cents: parts[i]! }));
    return cents;
  };
  const applied: AppliedBenefits = { promotions: [], coupon: null, member: null };

  const discountable = lines.filter((l) => l.discountable).map((l) => l.line);
  if (rules.member) {
    let total = 0;
    for (const line of discountable) {
      const cents = percentOf(remaining(line), rules.member.discountPercent);
      give(line, { source: 'member', ref: rules.member.level, cents });
      total += cents;
    }
    applied.member = { level: rules.member.level, discountCents: total, freeShipping: rules.member.freeShipping };
  }
  const byId = (a: ThresholdPromotion, b: ThresholdPromotion) => (a.promotionId < b.promotionId ? -1 : a.promotionId > b.promotionId ? 1 : 0);
  for (const promotion of [...rules.promotions].sort(byId)) {
    if (!isActive(promotion, acceptedAt)) continue;
    const covered = discountable.filter((line) => promotion.skuIds === null || promotion.skuIds.includes(line.skuId));
    const base = covered.reduce((sum, line) => sum + remaining(line), 0);
    const off = Math.min(promotion.offCents, base);
    const reached = promotionsEarned ? promotionsEarned.has(promotion.promotionId) : base >= promotion.thresholdCents;
    // one that takes nothing off (no line it covers, or its lines made free before it) is not listed among the order's benefits
    if (!reached || off === 0) continue;
    applied.promotions.push({ promotionId: promotion.promotionId, discountCents: spread(covered, off, 'promotion', promotion.promotionId) });
  }
  const coupon = rules.coupon;
  if (coupon && isActive(coupon, acceptedAt) && discountable.length > 0) {
    const base = discountable.reduce((sum, line) => sum + remaining(line), 0);
    const off = Math.min(coupon.kind === 'percent' ? percentOf(base, coupon.percentOff) : coupon.offCents, base);
    // a coupon that would take nothing off (its percentage of a few cents, lines the member level and promotions made free) is not used: the buyer keeps the use
    const reached = earned ? earned.coupon !== null : base >= coupon.minSpendCents;
    if (reached && off > 0) applied.coupon = { code: coupon.code, discountCents: spread(discountable, off, 'coupon', coupon.code) };
  }

  const priced = lines.map((l) => l.line);
  const shipped = shipsParcels(type);
  const warehouses = [...new Set(priced.map((line) => line.warehouseId))];
  for (const warehouseId of warehouses) {
    const fee = !shipped || rules.member?.freeShipping ? 0 : (rules.shippingFeeCents.get(warehouseId) ?? 0);
    const parcel = priced.filter((line) => line.warehouseId === warehouseId);
    const parts = allocateByLargestRemainder(fee, parcel.map(remaining));
    parcel.forEach((line, i) => (line.shippingCents = parts[i]!));
  }
  for (const line of priced) line.payableCents = remaining(line) + line.shippingCents;

  const sum = (pick: (line: PricedLine) => number) => priced.reduce((total, line) => total + pick(line), 0);
  const subtotalCents = sum((line) => line.unitPriceCents * line.qty);
  const discountCents = sum((line) => line.discountCents);
  const shippingCents = sum((line) => line.shippingCents);
  return {
    lines: priced,
    amounts: { subtotalCents, discountCents, shippingCents, payableCents: subtotalCents - discountCents + shippingCents },
    applied,
  };
}

/**
 * What a part of an order (a split child) used: its lines' discount shares summed per
 * member level, promotion and coupon, in the order's own order. A benefit none of its
 * lines has a share of is left out (a promotion's whole discount may sit on other lines).
 */
export function benefitsOfPart(shares: readonly DiscountShare[], order: AppliedBenefits): AppliedBenefits {
  const total = (source: DiscountShare['source'], ref: string) => shares.filter((s) => s.source === source && s.ref === ref).reduce((sum, s) => sum + s.cents, 0);
  return {
    member: order.member && { ...order.member, discountCents: total('member', order.member.level) },
    promotions: order.promotions
      .map((p) => ({ promotionId: p.promotionId, discountCents: total('promotion', p.promotionId) }))
      .filter((p) => p.discountCents > 0),
    coupon: order.coupon && total('coupon', order.coupon.code) > 0 ? { code: order.coupon.code, discountCents: total('coupon', order.coupon.code) } : null,
  };
}

/** A line as refunds see it: the parcel it ships in, what it paid and what it has given back so far. */
export interface RefundableLine extends Pick<SplittableLine, 'channel' | 'merchantId' | 'warehouseId'> {
  lineNo: number;
  qty: number;
  payableCents: number;
  shippingCents: number;
  refundedQty: number;
  refundedCents: number;
}

export interface LineRefund {
  lineNo: number;
  qty: number;
  cents: number;
}

/** The request asks for more units of a line (or of a SKU) than the order has left to refund. */
export class RefundExceedsLine extends DomainError {
  readonly code = 'REFUND_EXCEEDS_ORDER';
  constructor(readonly what: string) {
    super(`The order has fewer units of ${what} left to refund than asked`);
  }
}

/**
 * What giving back `qty` more units of each line refunds, exactly to the cent. A line's
 * goods (its payable less its shipping share) are refunded by units: after k of its n
 * units it has refunded floor(goods × k / n), so the last unit takes the remainder and
 * any sequence of partial refunds adds up to the goods exactly. A parcel's shipping (on
 * the lines of one fulfilment key: what a split makes one child of) goes back with the
 * refund that brings every unit of that parcel back, so an order refunded before its split
 * and its child refunded after it give back the same. Each line is priced up to that target
 * less what it has refunded so far, never below nothing: a refund priced while another's
 * units counted, that other then withdrawn (its units left with the parcel after all), leaves
 * the line off its target, and the next refund of it lands back on it (the last unit on the
 * payable) rather than refunding the difference twice. A line therefore never refunds more
 * than its payable, nor the order more than it paid.
 */
export function refundForLines(lines: readonly RefundableLine[], request: ReadonlyArray<{ lineNo: number; qty: number }>): LineRefund[] {
  const asked = new Map<number, number>();
  for (const { lineNo, qty } of request) asked.set(lineNo, (asked.get(lineNo) ?? 0) + qty);
  for (const [lineNo, qty] of asked) {
    const line = lines.find((l) => l.lineNo === lineNo);
    if (!line || qty <= 0 || line.refundedQty + qty > line.qty) throw new RefundExceedsLine(`line ${lineNo}`);
  }
  const backAfter = (line: RefundableLine) => line.refundedQty + (asked.get(line.lineNo) ?? 0) === line.qty;
  // the parcels whose last units this request brings back (one back before has no unit left to ask for)
  const parcelsBack = new Set(
    lines
      .filter((line) => asked.has(line.lineNo))
      .map(fulfilmentKey)
      .filter((parcel) => lines.every((line) => fulfilmentKey(line) !== parcel || backAfter(line))),
  );
  const parcelBack = (line: RefundableLine) => parcelsBack.has(fulfilmentKey(line));
  // BigInt: goods × units passes 2^53 on large lines, where a float loses the cent (goods are never negative: dividing truncates to the floor)
  const goodsAfter = (line: RefundableLine, units: number) => Number((BigInt(line.payableCents - line.shippingCents) * BigInt(units)) / BigInt(line.qty));
  return lines
    .filter((line) => asked.has(line.lineNo) || parcelBack(line))
    .map((line) => {
      const qty = asked.get(line.lineNo) ?? 0;
      const target = goodsAfter(line, line.refundedQty + qty) + (parcelBack(line) ? line.shippingCents : 0);
      return { lineNo: line.lineNo, qty, cents: Math.max(0, target - line.refundedCents) };
    })
    // a line of the parcel with no unit asked shows only for the shipping it still gives back
    .filter((refund) => refund.qty > 0 || refund.cents > 0);
}
