import {
  allocateByLargestRemainder,
  drawRefund,
  planSplit,
  presaleDepositCents,
  priceOrder,
  refundForLines,
  type Coupon,
  type MemberLevel,
  type OrderType,
  type PricingRules,
  type RefundableLine,
  type Sku,
  type ThresholdPromotion,
} from '@orders/domain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asRefundable, withRefunds } from './support/refundable-lines.js';

/**
 * The money invariants of pricing, refunds and presale payments, for every input the api
 * admits: prices, fees and promotion amounts up to MAX_PRICE_CENTS (10^11, libs/config and the
 * admin schemas), carts of up to MAX_ORDER_LINES lines of MAX_LINE_QTY units where
 * lines × (units + 1) ≤ 90,071 (what libs/config lets the two be set to together), SKUs of
 * several merchants and both channels sharing a warehouse, percentages 0–100.
 */
const MAX_PRICE_CENTS = 100_000_000_000;
const MOST_LINES_TIMES_UNITS = 90_071;

const acceptedAt = new Date('2026-11-11T10:00:00Z');
const always = { startsAt: new Date('2026-01-01T00:00:00Z'), endsAt: new Date('2027-01-01T00:00:00Z') };
const WAREHOUSES = ['wh-a', 'wh-b', 'wh-c'];

/** A cents amount: small ones, where rounding bites, as often as ones up to the largest the api takes. */
const centsArb = (max = MAX_PRICE_CENTS) => fc.oneof(fc.integer({ min: 0, max: Math.min(max, 20_000) }), fc.integer({ min: 0, max }));

const cartArb = fc.integer({ min: 1, max: 8 }).chain((lineCount) =>
  fc
    .uniqueArray(
      fc.record({
        skuNo: fc.integer({ min: 1, max: 30 }),
        priceCents: centsArb(),
        flashShare: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
        qty: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: Math.floor(MOST_LINES_TIMES_UNITS / lineCount) - 1 })),
        warehouseId: fc.constantFrom(...WAREHOUSES),
        merchantId: fc.constantFrom('shop-1', 'shop-2'),
        channel: fc.constantFrom('self' as const, 'third_party' as const),
      }),
      { minLength: lineCount, maxLength: lineCount, selector: (line) => line.skuNo },
    )
    .map((lines) => ({
      catalog: new Map(
        lines.map((l): [string, Sku] => [
          `S${l.skuNo}`,
          {
            skuId: `S${l.skuNo}`,
            title: `S${l.skuNo}`,
            priceCents: l.priceCents,
            merchantId: l.merchantId,
            channel: l.channel,
            warehouseId: l.warehouseId,
            deduction: 'placement',
            // a sale never sells dearer than the list (flashSaleConflict)
            flashSale: l.flashShare === null ? null : { priceCents: Math.floor((l.priceCents * l.flashShare) / 100), ...always, perUserLimit: 0 },
          },
        ]),
      ),
      items: lines.map((l) => ({ skuId: `S${l.skuNo}`, qty: l.qty })),
    })),
);

const promotionArb: fc.Arbitrary<ThresholdPromotion> = fc.record({
  promotionId: fc.stringMatching(/^[A-Za-z0-9_-]{1,6}$/),
  title: fc.constant('promotion'),
  thresholdCents: centsArb(),
  offCents: centsArb(),
  skuIds: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 30 }).map((n) => `S${n}`), { minLength: 1, maxLength: 5 }), { nil: null }),
  startsAt: fc.constant(always.startsAt),
  endsAt: fc.constant(always.endsAt),
});
const couponArb: fc.Arbitrary<Coupon> = fc.oneof(
  fc.record({ kind: fc.constant('percent' as const), percentOff: fc.integer({ min: 1, max: 100 }), offCents: fc.constant(0) }),
  fc.record({ kind: fc.constant('fixed' as const), percentOff: fc.constant(0), offCents: centsArb() }),
).chain((amount) =>
  fc.record({
    code: fc.constant('C'),
    kind: fc.constant(amount.kind),
    percentOff: fc.constant(amount.percentOff),
    offCents: fc.constant(amount.offCents),
    minSpendCents: centsArb(),
    perBuyerLimit: fc.constant(1),
    startsAt: fc.constant(always.startsAt),
    endsAt: fc.constant(always.endsAt),
  }),
);
const memberArb: fc.Arbitrary<MemberLevel> = fc.record({ level: fc.constant('m'), discountPercent: fc.integer({ min: 0, max: 100 }), freeShipping: fc.boolean() });
const rulesArb: fc.Arbitrary<PricingRules> = fc.record({
  // promotion ids are a primary key: unique
  promotions: fc.uniqueArray(promotionArb, { maxLength: 4, selector: (p) => p.promotionId }),
  coupon: fc.option(couponArb, { nil: null }),
  member: fc.option(memberArb, { nil: null }),
  shippingFeeCents: fc.tuple(...WAREHOUSES.map(() => centsArb())).map((fees) => new Map(WAREHOUSES.map((w, i) => [w, fees[i]!]))),
});
const typeArb = fc.constantFrom<OrderType>('standard', 'flash_sale', 'presale', 'virtual');

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);


describe('stacking threshold promotions', () => {
  it('applies promotions in the order of their ids, whatever order the rules store lists them in: a 105.00 cart with 10.00 off 100.00 and 5.00 off 100.00 pays 95.00 either way', () => {
    const catalog = new Map<string, Sku>([
      ['LAMP', { skuId: 'LAMP', title: 'Lamp', priceCents: 10_500, merchantId: 'shop-1', channel: 'self', warehouseId: 'wh-a', deduction: 'placement', flashSale: null }],
    ]);
    const tenOff: ThresholdPromotion = { promotionId: 'SPEND100-OFF10', title: '10.00 off 100.00', thresholdCents: 10_000, offCents: 1_000, skuIds: null, ...always };
    const fiveOff: ThresholdPromotion = { promotionId: 'SPEND100-OFF5', title: '5.00 off 100.00', thresholdCents: 10_000, offCents: 500, skuIds: null, ...always };
    const rules = (promotions: ThresholdPromotion[]): PricingRules => ({ promotions, coupon: null, member: null, shippingFeeCents: new Map() });
    // SPEND100-OFF10 first (its id sorts first): 10,500 − 1,000 = 9,500, below SPEND100-OFF5's 10,000
    for (const promotions of [
      [tenOff, fiveOff],
      [fiveOff, tenOff],
    ]) {
      const priced = priceOrder('standard', [{ skuId: 'LAMP', qty: 1 }], catalog, acceptedAt, rules(promotions));
      expect(priced.amounts).toEqual({ subtotalCents: 10_500, discountCents: 1_000, shippingCents: 0, payableCents: 9_500 });
      expect(priced.applied.promotions).toEqual([{ promotionId: 'SPEND100-OFF10', discountCents: 1_000 }]);
    }
  });
});

describe('pricing at the limits the api admits', () => {
  it('keeps every amount a safe whole number of cents, no line below its shipping, and the lines adding up to the order, at prices and fees up to 10^11 and 90,071 line-units', () => {
    fc.assert(
      fc.property(typeArb, cartArb, rulesArb, (type, { catalog, items }, rules) => {
        const { lines, amounts } = priceOrder(type, items, catalog, acceptedAt, rules);
        for (const value of Object.values(amounts)) expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
        for (const line of lines) {
          for (const value of [line.discountCents, line.shippingCents, line.payableCents]) expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
          expect(line.discountCents).toBeLessThanOrEqual(line.unitPriceCents * line.qty);
          expect(line.payableCents).toBe(line.unitPriceCents * line.qty - line.discountCents + line.shippingCents);
        }
        expect(sum(lines.map((l) => l.payableCents))).toBe(amounts.payableCents);
        expect(amounts.discountCents).toBeLessThanOrEqual(amounts.subtotalCents);
        // each warehouse's fee is charged once, whole, or not at all
        if (type !== 'virtual' && !rules.member?.freeShipping) {
          const warehouses = new Set(lines.map((l) => l.warehouseId));
          expect(amounts.shippingCents).toBe(sum([...warehouses].map((w) => rules.shippingFeeCents.get(w) ?? 0)));
        } else expect(amounts.shippingCents).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('never has a member pay more than a buyer without a level for the same cart: their discount takes no line below a threshold or a coupon\'s minimum spend', () => {
    fc.assert(
      fc.property(typeArb, cartArb, rulesArb, memberArb, (type, { catalog, items }, rules, member) => {
        const withLevel = priceOrder(type, items, catalog, acceptedAt, { ...rules, member });
        const without = priceOrder(type, items, catalog, acceptedAt, { ...rules, member: null });
        expect(withLevel.amounts.payableCents).toBeLessThanOrEqual(without.amounts.payableCents);
      }),
      { numRuns: 1000 },
    );
  });

  it('prices the same cart the same whichever order the rules store lists the promotions in, or the buyer listed the lines in', () => {
    fc.assert(
      fc.property(
        cartArb,
        rulesArb.chain((rules) => fc.tuple(fc.constant(rules), fc.shuffledSubarray([...rules.promotions], { minLength: rules.promotions.length }))),
        fc.context(),
        ({ catalog, items }, [rules, shuffled], context) => {
          const first = priceOrder('standard', items, catalog, acceptedAt, rules);
          const again = priceOrder('standard', items, catalog, acceptedAt, { ...rules, promotions: shuffled });
          context.log(`promotions ${rules.promotions.map((p) => p.promotionId).join(',')} then ${shuffled.map((p) => p.promotionId).join(',')}`);
          expect(again.amounts).toEqual(first.amounts);
          expect(again.lines.map((l) => l.payableCents)).toEqual(first.lines.map((l) => l.payableCents));
          expect([...again.applied.promotions].sort((a, b) => (a.promotionId < b.promotionId ? -1 : 1))).toEqual(
            [...first.applied.promotions].sort((a, b) => (a.promotionId < b.promotionId ? -1 : 1)),
          );
          // the lines in another order: the order's amounts are the same (a cent of a line's share may move between tied lines)
          const reversed = priceOrder('standard', [...items].reverse(), catalog, acceptedAt, rules);
          expect(reversed.amounts).toEqual(first.amounts);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('refunds and returns of any order, shop by shop', () => {
  it('refunding units in any steps gives back exactly what each line paid, each parcel’s shipping with its last unit, as its split child would', () => {
    const stepsArb = fc.array(fc.array(fc.record({ pick: fc.nat(), share: fc.integer({ min: 1, max: 100 }) }), { minLength: 1, maxLength: 3 }), { maxLength: 8 });
    fc.assert(
      fc.property(typeArb, cartArb, rulesArb, stepsArb, (type, { catalog, items }, rules, steps) => {
        const { lines, amounts } = priceOrder(type, items, catalog, acceptedAt, rules);
        let order = asRefundable(lines);
        let children = planSplit(amounts, lines).map((child) => asRefundable(child.lines));
        const refund = (request: Array<{ lineNo: number; qty: number }>) => {
          const refunds = refundForLines(order, request);
          for (const r of refunds) expect(Number.isSafeInteger(r.cents) && r.cents >= 0).toBe(true);
          order = withRefunds(order, refunds);
          children = children.map((child) => {
            const own = request.filter((r) => child.some((line) => line.lineNo === r.lineNo));
            return own.length === 0 ? child : withRefunds(child, refundForLines(child, own));
          });
          expect(children.flat().sort((a, b) => a.lineNo - b.lineNo)).toEqual(order);
          for (const line of order) expect(line.refundedCents).toBeLessThanOrEqual(line.payableCents);
        };
        for (const step of steps) {
          const open = order.filter((l) => l.refundedQty < l.qty);
          if (open.length === 0) break;
          // distinct lines, each asking a share of the units it has left (at least one)
          const picked = new Map(step.map(({ pick, share }) => [open[pick % open.length]!, share]));
          refund([...picked].map(([line, share]) => ({ lineNo: line.lineNo, qty: Math.max(1, Math.floor(((line.qty - line.refundedQty) * share) / 100)) })));
        }
        const rest = order.filter((l) => l.refundedQty < l.qty).map((l) => ({ lineNo: l.lineNo, qty: l.qty - l.refundedQty }));
        if (rest.length > 0) refund(rest);
        expect(order.map((l) => l.refundedCents)).toEqual(order.map((l) => l.payableCents));
        expect(sum(order.map((l) => l.refundedCents))).toBe(amounts.payableCents);
      }),
      { numRuns: 200 },
    );
  });

  it('refunding a line one unit at a time gives back its exact share after every unit: floor(goods × k / n), the last unit the rest', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: MAX_PRICE_CENTS }),
        fc.integer({ min: 0, max: 100 }),
        centsArb(),
        (qty, unitPriceCents, discountPercent, shippingCents) => {
          const goods = unitPriceCents * qty - Math.floor((unitPriceCents * qty * discountPercent) / 100);
          let line: RefundableLine = { lineNo: 1, channel: 'self', merchantId: 'shop-1', warehouseId: 'wh-a', qty, payableCents: goods + shippingCents, shippingCents, refundedQty: 0, refundedCents: 0 };
          for (let k = 1; k <= qty; k++) {
            const [back] = refundForLines([line], [{ lineNo: 1, qty: 1 }]);
            line = { ...line, refundedQty: k, refundedCents: line.refundedCents + back!.cents };
            const exact = Number((BigInt(goods) * BigInt(k)) / BigInt(qty)) + (k === qty ? shippingCents : 0);
            expect(line.refundedCents).toBe(exact);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('a presale’s deposit and balance', () => {
  it('splits any payable into a deposit and a balance that add up to it, each at least a cent when there are two', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), fc.integer({ min: 1, max: 99 }), (payable, percent) => {
        const deposit = presaleDepositCents(payable, percent);
        const balance = payable - deposit;
        expect(Number.isSafeInteger(deposit) && deposit >= 0 && balance >= 0).toBe(true);
        if (payable >= 1) expect(deposit).toBeGreaterThanOrEqual(1);
        if (payable >= 2) expect(balance).toBeGreaterThanOrEqual(1);
        // the percentage, rounded down, unless that leaves one side with nothing
        const exact = Number((BigInt(payable) * BigInt(percent)) / 100n);
        if (exact >= 1 && exact <= payable - 1) expect(deposit).toBe(exact);
      }),
    );
  });

  it('refunds of a paid presale draw from the balance first, never more from a payment than it took, all of both once every unit is back', () => {
    const stepsArb = fc.array(fc.record({ pick: fc.nat(), share: fc.integer({ min: 1, max: 100 }) }), { maxLength: 6 });
    fc.assert(
      fc.property(cartArb, rulesArb, fc.integer({ min: 1, max: 99 }), stepsArb, ({ catalog, items }, rules, percent, steps) => {
        const { lines, amounts } = priceOrder('presale', items, catalog, acceptedAt, rules);
        const deposit = presaleDepositCents(amounts.payableCents, percent);
        const took = new Map([
          ['balance', amounts.payableCents - deposit],
          ['deposit', deposit],
        ]);
        const left = new Map(took);
        let order = asRefundable(lines);
        const refund = (request: Array<{ lineNo: number; qty: number }>) => {
          const refunds = refundForLines(order, request);
          order = withRefunds(order, refunds);
          const amount = sum(refunds.map((r) => r.cents));
          const balanceLeft = left.get('balance')!;
          const parts = drawRefund(amount, [...left].map(([paymentId, refundableCents]) => ({ paymentId, refundableCents })));
          expect(sum(parts.map((p) => p.amountCents))).toBe(amount);
          // the deposit only once the balance is spent
          expect(parts.find((p) => p.paymentId === 'deposit')?.amountCents ?? 0).toBe(Math.max(0, amount - balanceLeft));
          for (const part of parts) left.set(part.paymentId, left.get(part.paymentId)! - part.amountCents);
          for (const [, cents] of left) expect(cents).toBeGreaterThanOrEqual(0);
        };
        for (const { pick, share } of steps) {
          const open = order.filter((l) => l.refundedQty < l.qty);
          if (open.length === 0) break;
          const line = open[pick % open.length]!;
          refund([{ lineNo: line.lineNo, qty: Math.max(1, Math.floor(((line.qty - line.refundedQty) * share) / 100)) }]);
        }
        const rest = order.filter((l) => l.refundedQty < l.qty).map((l) => ({ lineNo: l.lineNo, qty: l.qty - l.refundedQty }));
        if (rest.length > 0) refund(rest);
        expect([...left.values()]).toEqual([0, 0]);
        // called off after its deposit instead: the deposit goes back spread on the lines by what each pays, none over it
        const shares = allocateByLargestRemainder(deposit, lines.map((l) => l.payableCents));
        expect(sum(shares)).toBe(deposit);
        shares.forEach((cents, i) => expect(cents).toBeLessThanOrEqual(lines[i]!.payableCents));
      }),
      { numRuns: 200 },
    );
  });
});
