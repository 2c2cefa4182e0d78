import type { CatalogRepository } from '@orders/persistence';
import { enqueuePersistOrder, type OrderQueues } from '@orders/queues';
import type { Inventory } from '@orders/stock';
import { reservationOf } from '@orders/testing';

/**
 * Orders the workers cannot write, for the dead-letter tests: their SKU is sold in Redis but
 * unknown to MySQL, so their persist jobs fail for good until the operator's fix adds it.
 */
export class UnwritableOrders {
  constructor(private readonly deps: { inventory: Inventory; catalog: CatalogRepository; queues: OrderQueues }) {}

  /** A SKU that Redis sells but MySQL has never heard of: its orders cannot be written. */
  async sellOnlyInRedis(skuId: string): Promise<void> {
    await this.deps.inventory.initSku({ skuId, available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
  }

  /** The operator's fix: the SKU now exists in the catalog too. */
  async addToCatalog(skuId: string): Promise<void> {
    await this.deps.catalog.createSku(
      { skuId, title: skuId, priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement', flashSale: null },
      10,
      `opening-${skuId}`,
      // Redis holds the SKU already
      async () => undefined,
    );
  }

  /** One unit of `skuId` reserved by a buyer of its own and its persist job queued. */
  async accept(orderId: string, skuId: string): Promise<void> {
    const { order } = await this.deps.inventory.reserveStock(reservationOf(`buyer-${orderId}`, [{ skuId, qty: 1 }], { orderId, idempotencyKey: orderId, bodyHash: orderId }));
    await enqueuePersistOrder(this.deps.queues, order);
  }
}
