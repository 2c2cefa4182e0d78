import { isFlashSaleActive, type Sku } from './catalog.js';
import { UnknownSku } from './errors.js';
import type { OrderLineRequest } from './order.js';

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
  payableCents: number;
}

export interface OrderAmounts {
  subtotalCents: number;
  discountCents: number;
  shippingCents: number;
  payableCents: number;
}

export interface PricedOrder {
  lines: PricedLine[];
  amounts: OrderAmounts;
}

/**
 * Prices an order from the catalog as it stood when the order was accepted: the
 * flash-sale price applies if the sale was running at `acceptedAt`, even when the
 * worker persists the order after the sale closed. Client-sent prices never exist.
 */
export function priceOrder(items: readonly OrderLineRequest[], catalog: ReadonlyMap<string, Sku>, acceptedAt: Date): PricedOrder {
  const lines = items.map((item, index): PricedLine => {
    const sku = catalog.get(item.skuId);
    if (!sku) throw new UnknownSku(item.skuId);
    const unitPriceCents = sku.flashSale && isFlashSaleActive(sku, acceptedAt) ? sku.flashSale.priceCents : sku.priceCents;
    return {
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
      payableCents: unitPriceCents * item.qty,
    };
  });
  const subtotalCents = lines.reduce((sum, line) => sum + line.unitPriceCents * line.qty, 0);
  const discountCents = lines.reduce((sum, line) => sum + line.discountCents, 0);
  const shippingCents = 0;
  return {
    lines,
    amounts: { subtotalCents, discountCents, shippingCents, payableCents: subtotalCents - discountCents + shippingCents },
  };
}
