import type { OrderType } from './order-process.js';

export type Channel = 'self' | 'third_party';
/** When a SKU's stock is taken: reserved at checkout, or checked then and deducted at payment. */
export type Deduction = 'placement' | 'payment';
/**
 * The type of the orders that sell a SKU. A presale or virtual SKU is bought in an order of
 * its own type, never in one cart with SKUs of another; a standard SKU in its flash sale
 * makes a flash_sale order.
 */
export type SkuOrderType = Extract<OrderType, 'standard' | 'presale' | 'virtual'>;
export const SKU_ORDER_TYPES: readonly SkuOrderType[] = ['standard', 'presale', 'virtual'];

export interface FlashSale {
  priceCents: number;
  startsAt: Date;
  endsAt: Date;
  perUserLimit: number;
}

export interface Sku {
  skuId: string;
  title: string;
  priceCents: number;
  merchantId: string;
  channel: Channel;
  warehouseId: string;
  deduction: Deduction;
  flashSale: FlashSale | null;
  /** How many buckets the stock is split into so a hot SKU's checkouts spread over Redis slots; 1 when absent. */
  stockBuckets?: number;
  /** The type of the orders that sell it; standard when absent. */
  orderType?: SkuOrderType;
  /** Since when the shop has it off sale (every checkout of it refused); on sale when absent or null. */
  offSaleSince?: Date | null;
}

/** Whether the shop has the SKU off sale: every checkout of it refused. */
export const isOffSale = (sku: Pick<Sku, 'offSaleSince'>): boolean => (sku.offSaleSince ?? null) !== null;

/** Why a SKU's order type does not go with the rest of its rules, or null when it does. */
export function orderTypeConflict(sku: Pick<Sku, 'orderType' | 'deduction' | 'flashSale'>): string | null {
  const type = sku.orderType ?? 'standard';
  if (type !== 'standard' && sku.flashSale) return `A ${type} SKU has no flash sale: a flash sale makes orders of its own type (flash_sale)`;
  if (type === 'presale' && sku.deduction === 'payment') {
    return 'A presale SKU is deducted at placement, not at payment: a presale holds its units from checkout until its balance is paid or forfeited';
  }
  return null;
}

/**
 * Why a SKU's stock cannot be split into buckets, or null when it can: one deducted at payment
 * takes its units at payment from the buyer's own bucket, where nothing moves units in from
 * the others, so a buyer whose bucket ran dry was refunded as sold out while the others sold on.
 */
export function stockBucketsConflict(sku: Pick<Sku, 'stockBuckets' | 'deduction'>): string | null {
  if ((sku.stockBuckets ?? 1) > 1 && sku.deduction === 'payment') {
    return `stockBuckets ${sku.stockBuckets} needs deduction 'placement': a SKU deducted at payment takes its units from the buyer's own bucket when paid, and a bucket run dry would refund paid orders while other buckets still hold units`;
  }
  return null;
}

/** Why a SKU's flash sale does not go with its list price, or null when it does: a sale never sells dearer than the list. */
export function flashSaleConflict(sku: Pick<Sku, 'priceCents' | 'flashSale'>): string | null {
  if (sku.flashSale && sku.flashSale.priceCents > sku.priceCents) {
    return `flashSale.priceCents ${sku.flashSale.priceCents} is above priceCents ${sku.priceCents}: a flash sale sells at the list price or below`;
  }
  return null;
}

/** Whether two sales (or none) are the same sale: price, window and limit. */
export function sameFlashSale(a: FlashSale | null, b: FlashSale | null): boolean {
  if (a === null || b === null) return a === b;
  return a.priceCents === b.priceCents && a.startsAt.getTime() === b.startsAt.getTime() && a.endsAt.getTime() === b.endsAt.getTime() && a.perUserLimit === b.perUserLimit;
}

export function isFlashSaleActive(sku: Pick<Sku, 'flashSale'>, at: Date): boolean {
  const sale = sku.flashSale;
  return sale !== null && sale.startsAt.getTime() <= at.getTime() && at.getTime() < sale.endsAt.getTime();
}
