import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * docs/operations.md, "Redis restarted", followed as written: Redis came back without its data,
 * the operator runs `npm run reconcile -- --repair` (step 1) and tells support that the buyers of
 * orders lost with it check out again (step 2). Buyers whose orders reached MySQL are told nothing:
 * the repair puts back the records of their Idempotency-Keys, so a checkout they send again (its
 * 202 lost) is answered their order, as it was before Redis lost them.
 */
describe('Idempotency-Keys of orders in MySQL after Redis lost its data and the repair ran', () => {
  let system: OrderSystem;
  const reconcile = (repair: boolean) => system.reconciler().reconcile({ repair });
  const checkout = (buyer: string, items: Array<{ skuId: string; qty: number }>, key: string) =>
    system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body: { items, address: buyerAddress } });

  beforeAll(async () => {
    system = await startOrderSystem('checkout_keys_after_redis_loss', { RECONCILE_INTERVAL_MS: '0' });
    await system.createSku({ skuId: 'KETTLE', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    // split into buckets: its carts run in the buyer's bucket, their key claimed in the buyer's own group
    await system.createSku({ skuId: 'TOASTER', priceCents: 4_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 40, deduction: 'placement', stockBuckets: 4 });
  });
  afterAll(async () => system?.close());

  it('a client retrying its accepted checkout with the same Idempotency-Key after the repair gets its order, not a second one', async () => {
    const first = await checkout('ivy', [{ skuId: 'KETTLE', qty: 2 }], 'ivy-kettle');
    expect(first.status).toBe(202);
    const orderId = first.body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    await system.loseRedisData();
    const repaired = await reconcile(true);
    expect(await system.stockOf('KETTLE')).toEqual({ available: 8, reserved: 2, sold: 0 });

    // the buyer's app never saw the 202 (a timeout) and sends the same request again, as API.md says it may:
    // "The same key with the same body returns the first response again"
    const retried = await checkout('ivy', [{ skuId: 'KETTLE', qty: 2 }], 'ivy-kettle');
    expect(retried.status).toBe(202);
    expect(retried.body.orderId).toBe(orderId);
    // had it been accepted as a new order, the buyer now holds two orders (4 kettles reserved) for one request
    expect(await system.stockOf('KETTLE')).toEqual({ available: 8, reserved: 2, sold: 0 });

    // the same key with another body is still a conflict, and a repair run again puts back nothing twice
    const other = await checkout('ivy', [{ skuId: 'KETTLE', qty: 1 }], 'ivy-kettle');
    expect([other.status, other.body.code]).toEqual([422, 'IDEMPOTENCY_CONFLICT']);
    expect(repaired.checkoutKeysRestored).toBe(1);
    expect((await reconcile(true)).checkoutKeysRestored).toBe(0);
  });

  it('a cart of a SKU split into buckets, retried after the repair, gets its order, and the key still refuses another cart', async () => {
    const first = await checkout('jon', [{ skuId: 'TOASTER', qty: 1 }], 'jon-toaster');
    expect(first.status).toBe(202);
    const orderId = first.body.orderId as string;
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    await system.loseRedisData();
    const repaired = await reconcile(true);

    const retried = await checkout('jon', [{ skuId: 'TOASTER', qty: 1 }], 'jon-toaster');
    expect([retried.status, retried.body.orderId]).toEqual([202, orderId]);
    // a cart running in the buyer's own group under the key: the claim the repair put back refuses it
    const otherCart = await checkout('jon', [{ skuId: 'KETTLE', qty: 1 }], 'jon-toaster');
    expect([otherCart.status, otherCart.body.code]).toEqual([422, 'IDEMPOTENCY_CONFLICT']);
    expect((await system.stockOf('TOASTER')).reserved).toBe(1);
    // this cart's record and the kettle's above (its claim is not counted)
    expect(repaired.checkoutKeysRestored).toBe(2);
  });
});
