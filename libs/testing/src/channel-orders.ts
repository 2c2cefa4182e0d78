import { buyerAddress } from './processes.js';

/** An order another channel took, as POST /v1/admin/orders/import receives it: `qty` kettles from wh-east, in `status` there. */
export function channelOrder(externalOrderId: string, { status = 'PAID', qty = 1 }: { status?: string; qty?: number } = {}) {
  return {
    externalOrderId,
    userId: 'tm-buyer-1',
    placedAt: '2026-11-11T00:00:05.000Z',
    status,
    items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty, unitPriceCents: 3_900 }],
    shippingCents: 0,
    address: buyerAddress,
  };
}
