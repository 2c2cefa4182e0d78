export type Channel = 'self' | 'third_party';
/** When a SKU's stock is taken: reserved at checkout, or checked then and deducted at payment. */
export type Deduction = 'placement' | 'payment';

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
}

export function isFlashSaleActive(sku: Pick<Sku, 'flashSale'>, at: Date): boolean {
  const sale = sku.flashSale;
  return sale !== null && sale.startsAt.getTime() <= at.getTime() && at.getTime() < sale.endsAt.getTime();
}
