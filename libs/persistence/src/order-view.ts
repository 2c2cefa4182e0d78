import { stateMachineFor, type Address, type AppliedBenefits, type DiscountShare, type OrderType } from '@orders/domain';
import type { OrderHistoryRow, OrderItemRow, OrderRow } from './schema.js';

/** An order as API.md shows it (`GET /v1/orders/:orderId`). */
export interface OrderView {
  orderId: string;
  parentOrderId: string | null;
  type: string;
  status: string;
  buyerStatus: string;
  merchantStatus: string;
  userId: string;
  items: Array<{
    skuId: string;
    title: string;
    qty: number;
    unitPriceCents: number;
    discountCents: number;
    payableCents: number;
    warehouseId: string;
    merchantId: string;
    channel: string;
    shippingCents: number;
    /** where each cent of the line's discount came from */
    discounts: DiscountShare[];
    refundedQty: number;
    refundedCents: number;
  }>;
  amounts: { subtotalCents: number; discountCents: number; shippingCents: number; payableCents: number; refundedCents: number };
  address: Address;
  couponCode: string | null;
  /** the member level, promotions and coupon the order used */
  benefits: AppliedBenefits | null;
  payment: { paymentId: string; transactionId: string | null; paidAt: string | null; method: string } | null;
  shipments: Array<{ shipmentId: string; warehouseId: string; trackingNo: string | null; status: string }>;
  subOrders: string[];
  /** `detail`: the reason given with the step, or what it changed (a refund's id, a new address); null when none */
  history: Array<{ from: string | null; action: string; to: string; at: string; actor: string; detail: string | null }>;
  paymentDeadline: string;
  /** an imported order's channel and its id there; null for this shop's own orders */
  sourceChannel: string | null;
  externalOrderId: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toOrderView(
  order: OrderRow,
  items: OrderItemRow[],
  history: OrderHistoryRow[],
  extras: Pick<OrderView, 'payment' | 'shipments' | 'subOrders'> = { payment: null, shipments: [], subOrders: [] },
): OrderView {
  const labels = stateMachineFor(order.type as OrderType).labels(order.status);
  return {
    orderId: order.order_id,
    parentOrderId: order.parent_order_id,
    type: order.type,
    status: order.status,
    buyerStatus: labels.buyerLabel,
    merchantStatus: labels.merchantLabel,
    userId: order.user_id,
    items: items.map((item) => ({
      skuId: item.sku_id,
      title: item.title,
      qty: item.qty,
      unitPriceCents: Number(item.unit_price_cents),
      discountCents: Number(item.discount_cents),
      payableCents: Number(item.payable_cents),
      warehouseId: item.warehouse_id,
      merchantId: item.merchant_id,
      channel: item.channel,
      shippingCents: Number(item.shipping_cents),
      discounts: item.discounts === null ? [] : (JSON.parse(item.discounts) as DiscountShare[]),
      refundedQty: item.refunded_qty,
      refundedCents: Number(item.refunded_cents),
    })),
    amounts: {
      subtotalCents: Number(order.subtotal_cents),
      discountCents: Number(order.discount_cents),
      shippingCents: Number(order.shipping_cents),
      payableCents: Number(order.payable_cents),
      refundedCents: Number(order.refunded_cents),
    },
    address: JSON.parse(order.address) as Address,
    couponCode: order.coupon_code,
    benefits: order.benefits === null ? null : (JSON.parse(order.benefits) as AppliedBenefits),
    ...extras,
    history: history.map((h) => ({ from: h.from_status, action: h.action, to: h.to_status, at: h.at.toISOString(), actor: h.actor, detail: h.detail })),
    paymentDeadline: order.payment_deadline.toISOString(),
    sourceChannel: order.source_channel,
    externalOrderId: order.external_order_id,
    createdAt: order.created_at.toISOString(),
    updatedAt: order.updated_at.toISOString(),
  };
}
