import type { AcceptedOrder } from '@orders/domain';
import type { AppDeps } from './app-deps.js';
import type { Principal } from './plugins/auth.js';

/**
 * An order still in the queue (accepted, not yet in MySQL), as far as the principal may know
 * of it: its buyer, an admin, or a merchant holding one of its SKUs, the same people who see
 * it once persisted (a buyer's support call about a fresh 202 during a backlog finds it).
 * null for anyone else, so ids cannot be probed.
 */
export async function queuedOrderFor(deps: Pick<AppDeps, 'inventory' | 'catalog'>, principal: Principal, orderId: string): Promise<AcceptedOrder | null> {
  const accepted = await deps.inventory.findAcceptedOrder(orderId);
  if (!accepted) return null;
  switch (principal.role) {
    case 'admin':
      return accepted;
    case 'buyer':
      return accepted.userId === principal.sub ? accepted : null;
    case 'merchant': {
      const skus = await deps.catalog.findSkus(accepted.items.map((item) => item.skuId));
      return [...skus.values()].some((sku) => sku.merchantId === principal.sub) ? accepted : null;
    }
  }
}
