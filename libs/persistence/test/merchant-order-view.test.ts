import { merchantOrderView, type OrderView } from '@orders/persistence';
import { describe, expect, it } from 'vitest';

type Line = OrderView['items'][number];

const line = (skuId: string, merchantId: string, payableCents: number, discounts: Line['discounts']): Line => ({
  skuId,
  title: skuId,
  qty: 1,
  unitPriceCents: payableCents + discounts.reduce((sum, share) => sum + share.cents, 0),
  discountCents: discounts.reduce((sum, share) => sum + share.cents, 0),
  payableCents,
  warehouseId: `wh-${merchantId}`,
  merchantId,
  channel: 'third_party',
  shippingCents: 0,
  discounts,
  refundedQty: 0,
  refundedCents: 0,
});

/**
 * A paid order of two merchants' lines, split into a child per merchant: the shop's kettle
 * (a flash-sale line: no coupon on it) and the potter's mug (200 of the coupon's cents).
 */
const order: OrderView = {
  orderId: 'PARENT',
  parentOrderId: null,
  type: 'flash_sale',
  status: 'REFUNDING',
  buyerStatus: 'After-sales',
  merchantStatus: 'Refunding',
  userId: 'ann',
  items: [line('KETTLE', 'shop', 2_000, []), line('MUG', 'potter', 700, [{ source: 'coupon', ref: 'TENOFF', cents: 200 }])],
  amounts: { subtotalCents: 2_900, discountCents: 200, shippingCents: 0, payableCents: 2_700, refundedCents: 700 },
  address: null,
  couponCode: 'TENOFF',
  benefits: { member: null, promotions: [], coupon: { code: 'TENOFF', discountCents: 200 } },
  payment: { paymentId: 'pay-1', transactionId: 'tx-1', paidAt: '2026-12-05T00:00:00.000Z', method: 'card' },
  payments: [],
  shipments: [],
  subOrders: ['CHILD-SHOP', 'CHILD-POTTER'],
  history: [],
  paymentDeadline: '2026-12-05T00:10:00.000Z',
  balanceDeadline: null,
  nextTimer: null,
  sourceChannel: null,
  externalOrderId: null,
  createdAt: '2026-12-05T00:00:00.000Z',
  updatedAt: '2026-12-05T00:00:00.000Z',
};

/** One of the merchant's own children, in `status` since the order's last change. */
const ownChild = (status: string) => ({ status, updatedAt: order.updatedAt });

describe("a merchant's view of an order holding another merchant's lines too", () => {
  it('reads the status from its own children alone: the potter refunding its mug is not the shop’s to see', () => {
    const shop = merchantOrderView(order, 'shop', ['CHILD-SHOP'], [], [ownChild('IN_FULFILLMENT')]);
    expect([shop.status, shop.buyerStatus, shop.merchantStatus, shop.subOrders]).toEqual(['IN_FULFILLMENT', 'To ship', 'In fulfilment', ['CHILD-SHOP']]);
    const potter = merchantOrderView(order, 'potter', ['CHILD-POTTER'], [], [ownChild('REFUNDING')]);
    expect([potter.status, potter.merchantStatus]).toEqual(['REFUNDING', 'Refunding']);
  });

  it('names the coupon only to the merchant whose lines took it', () => {
    const shop = merchantOrderView(order, 'shop', ['CHILD-SHOP'], [], [ownChild('IN_FULFILLMENT')]);
    expect([shop.couponCode, shop.benefits?.coupon, shop.amounts.payableCents]).toEqual([null, null, 2_000]);
    const potter = merchantOrderView(order, 'potter', ['CHILD-POTTER'], [], [ownChild('REFUNDING')]);
    expect([potter.couponCode, potter.benefits?.coupon, potter.amounts.discountCents]).toEqual(['TENOFF', { code: 'TENOFF', discountCents: 200 }, 200]);
  });

  it('keeps the whole order’s steps from the shop, and drops those the order took from the potter’s child and refund', () => {
    const step = (action: string, to: string, detail: string | null) => ({ from: 'PAID', action, to, actor: 'system', detail, at: '2026-12-05T00:00:00.000Z' });
    const history = [
      step('pay', 'PAID', 'card'),
      step('refund_lines', 'PAID', 'refund PARENT-rf-mug: chipped mug'),
      step('split', 'PAID', 'split into CHILD-SHOP, CHILD-POTTER'),
      step('fulfil', 'IN_FULFILLMENT', 'derived from child order CHILD-SHOP'),
      step('refund', 'REFUNDING', 'derived from child order CHILD-POTTER'),
      step('note', 'REFUNDING', 'MUG restocked'),
    ];
    const shop = merchantOrderView({ ...order, history }, 'shop', ['CHILD-SHOP'], ['PARENT-rf-mug'], [ownChild('IN_FULFILLMENT')]);
    expect(shop.history.map((s) => [s.action, s.detail])).toEqual([
      ['pay', 'card'],
      ['split', null],
      ['fulfil', 'derived from child order CHILD-SHOP'],
      ['note', null],
    ]);
  });

  it('shows the statuses of the split order’s steps as its own part moved, never those another merchant’s child gave the whole order', () => {
    const at = (second: number) => `2026-12-05T00:00:0${second}.000Z`;
    const step = (action: string, from: string, to: string, detail: string | null, second: number) => ({ from, action, to, actor: 'system', detail, at: at(second) });
    const history = [
      step('pay', 'PENDING_PAYMENT', 'PAID', 'card', 0),
      step('split', 'PAID', 'PAID', 'split into CHILD-SHOP, CHILD-POTTER', 1),
      step('fulfil', 'PAID', 'IN_FULFILLMENT', 'derived from child order CHILD-POTTER', 2),
      step('request_return', 'IN_FULFILLMENT', 'RETURN_REQUESTED', 'derived from child order CHILD-POTTER', 3),
      step('change_address', 'RETURN_REQUESTED', 'RETURN_REQUESTED', '1 Road, N1 London', 4),
      step('refund', 'RETURN_REQUESTED', 'REFUNDING', 'derived from child order CHILD-SHOP', 5),
      // the order's own refund from before the split paid back, which held the shop's child open: the child closes with it
      step('refund_succeeded', 'REFUNDING', 'RETURN_REQUESTED', 'refund PARENT-rf-both', 6),
    ];
    const childStep = (action: string, from: string | null, to: string, second: number) => ({ orderId: 'CHILD-SHOP', from, action, to, at: at(second), actor: 'system' });
    const ownSteps = [
      childStep('split', null, 'PAID', 1),
      childStep('fulfil', 'PAID', 'IN_FULFILLMENT', 2),
      childStep('change_address', 'IN_FULFILLMENT', 'IN_FULFILLMENT', 4),
      childStep('refund', 'IN_FULFILLMENT', 'REFUNDING', 5),
      childStep('refund_succeeded', 'REFUNDING', 'REFUNDED', 6),
    ];
    const shop = merchantOrderView({ ...order, history }, 'shop', ['CHILD-SHOP'], [], [ownChild('REFUNDED')], ownSteps);
    expect(shop.history.map((s) => [s.action, s.from, s.to])).toEqual([
      ['pay', 'PENDING_PAYMENT', 'PAID'],
      ['split', 'PAID', 'PAID'],
      // the shop's child handed over in the instant the potter's did, which the order's step names: the shop's part's own move
      ['fulfil', 'PAID', 'IN_FULFILLMENT'],
      ['change_address', 'IN_FULFILLMENT', 'IN_FULFILLMENT'],
      ['refund', 'IN_FULFILLMENT', 'REFUNDING'],
      ['refund_succeeded', 'REFUNDING', 'REFUNDED'],
    ]);
  });

  it('names to the merchant of a split order’s child none of the refunds of another’s lines that hold its completion', () => {
    const child = { ...order, orderId: 'CHILD-SHOP', parentOrderId: 'PARENT', status: 'DELIVERED', items: [order.items[0]!], subOrders: [], nextTimer: { action: 'complete', dueAt: '2026-12-20T00:00:00.000Z', refundsOwed: ['PARENT-rf-mug', 'CHILD-SHOP-rf-kettle'] } };
    expect(merchantOrderView(child, 'shop', [], ['PARENT-rf-mug'], []).nextTimer).toEqual({ action: 'complete', dueAt: '2026-12-20T00:00:00.000Z', refundsOwed: ['CHILD-SHOP-rf-kettle'] });
  });

  it('names the coupon to the merchant of a split order’s child only where its lines took it', () => {
    const child = { ...order, orderId: 'CHILD-SHOP', parentOrderId: 'PARENT', items: [order.items[0]!], subOrders: [], benefits: { member: null, promotions: [], coupon: null } };
    expect(merchantOrderView(child, 'shop', [], [], []).couponCode).toBeNull();
    const potters = { ...child, orderId: 'CHILD-POTTER', items: [order.items[1]!], benefits: order.benefits };
    expect(merchantOrderView(potters, 'potter', [], [], [])).toBe(potters);
  });

  it('shows an order of the merchant’s lines alone whole', () => {
    const own = { ...order, items: [order.items[0]!], subOrders: [] };
    expect(merchantOrderView(own, 'shop', [], [], [])).toBe(own);
  });
});
