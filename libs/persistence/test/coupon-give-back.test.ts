import { NO_PRICING_RULES, priceOrder, type Coupon, type Sku } from '@orders/domain';
import { OrderRepository } from '@orders/persistence';
import { buyerAddress, createTestEnv, writtenOrHeldUp, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const lamp: Sku = { skuId: 'LAMP', title: 'Lamp', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null };
const once: Coupon = { code: 'ONCE', kind: 'fixed', percentOff: 0, offCents: 300, minSpendCents: 0, perBuyerLimit: 1, startsAt: new Date('2020-01-01T00:00:00Z'), endsAt: new Date('2100-01-01T00:00:00Z') };

describe("a cancellation's transaction giving its order's coupon use back, beside the persist batches of a sale", () => {
  let env: TestEnv;
  let orders: OrderRepository;

  beforeAll(async () => {
    env = await createTestEnv('coupon_give_back');
    orders = new OrderRepository(env.db);
    const { code, kind, percentOff, offCents, minSpendCents, perBuyerLimit, startsAt, endsAt } = once;
    await env.db
      .insertInto('coupons')
      .values({ code, kind, percent_off: percentOff, off_cents: offCents, min_spend_cents: minSpendCents, per_buyer_limit: perBuyerLimit, starts_at: startsAt, ends_at: endsAt })
      .execute();
  });
  afterAll(async () => env?.cleanup());

  /** Order ids grow with time, as the intake's do: each persisted one is the newest. */
  const orderId = (n: number) => `01KCOUPON0${String(n).padStart(16, '0')}`;
  /** `applied`: whether pricing took the coupon off (not, for an order under its minimum spend): only then is its use recorded. */
  const persist = (n: number, userId: string, couponCode: string | null, applied = couponCode !== null) => {
    const acceptedAt = new Date();
    const items = [{ skuId: 'LAMP', qty: 1 }];
    return orders.persistAcceptedOrders(
      [
        {
          accepted: { orderId: orderId(n), userId, type: 'standard', items, address: buyerAddress, couponCode, acceptedAt: acceptedAt.toISOString(), paymentDeadline: new Date(acceptedAt.getTime() + 60_000).toISOString() },
          priced: priceOrder('standard', items, new Map([['LAMP', lamp]]), acceptedAt, { ...NO_PRICING_RULES, coupon: applied ? once : null }),
        },
      ],
      acceptedAt,
    );
  };
  const redemptions = () => env.db.selectFrom('coupon_redemptions').select(['order_id', 'user_id', 'status']).orderBy('order_id').execute();

  /** Gives order `n`'s use back in a transaction left open while the batch writing order `next` runs: whether that batch waited for it. */
  const batchBesideOpenGiveBack = (n: number, next: () => Promise<unknown>) =>
    env.db.transaction().execute(async (trx) => {
      await OrderRepository.restoreCoupon(trx, orderId(n), new Date());
      return writtenOrHeldUp(env.db, next(), 'the batch');
    });

  it("holds up no batch writing another buyer's use of the coupon, though the cancelled order is the newest", async () => {
    await persist(1, 'ann', 'ONCE');

    expect(await batchBesideOpenGiveBack(1, () => persist(2, 'bob', 'ONCE'))).toBe('written');
    expect(await redemptions()).toEqual([
      { order_id: orderId(1), user_id: 'ann', status: 'restored' },
      { order_id: orderId(2), user_id: 'bob', status: 'used' },
    ]);
  });

  it('holds up nothing when the cancelled order named a coupon its pricing did not apply', async () => {
    await persist(3, 'cat', 'ONCE', false);

    expect(await batchBesideOpenGiveBack(3, () => persist(4, 'dan', 'ONCE'))).toBe('written');
    expect((await redemptions()).map((row) => row.order_id)).toEqual([orderId(1), orderId(2), orderId(4)]);
  });
});
