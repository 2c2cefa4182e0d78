import { connectApi, createSkuWithStock } from '@orders/api';
import type { Config } from '@orders/config';
import { SkuAlreadyExists, type Sku } from '@orders/domain';

const HOUR = 3600_000;

/** A small shop: a flash-sale phone, everyday goods from two warehouses and a third-party seller. */
export function demoCatalog(now: Date): Array<{ sku: Sku; stock: number }> {
  const base = { channel: 'self' as const, merchantId: 'shop', deduction: 'placement' as const, flashSale: null };
  return [
    {
      sku: {
        ...base,
        skuId: 'PHONE-X-FLASH',
        title: 'Phone X (flash sale)',
        priceCents: 99_900,
        warehouseId: 'wh-east',
        flashSale: { priceCents: 49_900, startsAt: new Date(now.getTime() - HOUR), endsAt: new Date(now.getTime() + 7 * 24 * HOUR), perUserLimit: 2 },
      },
      stock: 1000,
    },
    { sku: { ...base, skuId: 'TSHIRT-BLK-M', title: 'T-shirt black M', priceCents: 1_999, warehouseId: 'wh-east', deduction: 'payment' }, stock: 50_000 },
    { sku: { ...base, skuId: 'MUG-WHITE', title: 'Mug white', priceCents: 899, warehouseId: 'wh-west' }, stock: 10_000 },
    { sku: { ...base, skuId: 'BOOK-TS', title: 'Book: TypeScript in practice', priceCents: 3_450, warehouseId: 'wh-west', channel: 'third_party', merchantId: 'bookseller' }, stock: 500 },
  ];
}

/** Loads the demo catalog; SKUs that already exist are left as they are. Returns the ids created. */
export async function seedDemoCatalog(config: Config): Promise<string[]> {
  const deps = await connectApi(config, { migrate: true });
  const created: string[] = [];
  try {
    for (const { sku, stock } of demoCatalog(new Date())) {
      try {
        await createSkuWithStock(deps, sku, stock, `seed-${sku.skuId}`);
        created.push(sku.skuId);
      } catch (error) {
        if (!(error instanceof SkuAlreadyExists)) throw error;
      }
    }
  } finally {
    await deps.close();
  }
  return created;
}
