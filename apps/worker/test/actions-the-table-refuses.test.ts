import { buyerAddress, channelOrder } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Each order type's table, as the routes that fire its actions answer them: what it refuses is refused 409 ILLEGAL_TRANSITION, not answered as done, nor named another route.
 * The api, a worker and both simulators over HTTP (support/order-system).
 */
describe('order types: an action the table refuses is refused as the table says', () => {
  let system: OrderSystem;

  beforeAll(async () => {
    system = await startOrderSystem('actions_the_table_refuses', { RECONCILE_INTERVAL_MS: '0', EXTERNAL_RETRY_DELAY_MS: '100' });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
    await system.createSku({ ...sku, skuId: 'VOUCHER', priceCents: 2_500, warehouseId: 'digital', stock: 100, orderType: 'virtual' });
    await system.createSku({ ...sku, skuId: 'KETTLE', priceCents: 3_900, stock: 100 });
  });
  afterAll(async () => {
    await system?.close();
  });

  const admin = () => system.token('ops', 'admin');
  const merchant = () => system.token('shop', 'merchant');
  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const offered = async (orderId: string, token: string) => (await system.request('GET', `/v1/orders/${orderId}/actions`, { token })).body.actions.map((a: { action: string }) => a.action);

  it("refuses a merchant's change_address, which its table never lets a merchant take (nor lists), with 409 ILLEGAL_TRANSITION, not a 409 CONFLICT sending it to the address route, which answers the merchant 403", async () => {
    const orderId = await system.checkout('mia', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await pay(orderId, 'mia');
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the table: change_address by buyer and admin only; the merchant's list does not offer it
    expect(await offered(orderId, merchant())).not.toContain('change_address');
    const fired = await system.request('POST', `/v1/orders/${orderId}/actions/change_address`, { token: merchant() });
    const followed = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token: merchant(), body: { address: { ...buyerAddress, line1: '1 Merchant Rd' } } });
    expect({ fired: [fired.status, fired.body.code], followed: followed.status }).toEqual({ fired: [409, 'ILLEGAL_TRANSITION'], followed: 403 });
  });

  it('refuses a refund, cancel, address change or return decision of a completed gift card through the actions route with 409 ILLEGAL_TRANSITION (the table refuses them all), not 409 CONFLICT naming a route to take them by', async () => {
    const orderId = await system.checkout('moe', [{ skuId: 'VOUCHER', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await pay(orderId, 'moe');
    await system.waitForStatus(orderId, 'COMPLETED');
    // a completed gift card: nothing may be refunded, cancelled, or have its address changed, and nothing is listed
    expect(await offered(orderId, admin())).toEqual([]);
    const actions = ['refund', 'cancel', 'refund_lines', 'change_address', 'approve_return'];
    const answers = [];
    for (const action of actions) {
      const fired = await system.request('POST', `/v1/orders/${orderId}/actions/${action}`, { token: admin() });
      answers.push([action, fired.status, fired.body.code]);
    }
    expect(answers).toEqual(actions.map((action) => [action, 409, 'ILLEGAL_TRANSITION']));
    expect((await system.order(orderId)).status).toBe('COMPLETED');
  });

  it("refuses the buyer's cancel of an imported order with 409 ILLEGAL_TRANSITION (paid in its channel, its buyer cannot cancel it) also once its shop cancelled it, instead of a 200 as if the buyer had cancelled it before", async () => {
    const imported = await system.request('POST', '/v1/admin/orders/import', { token: admin(), body: { channel: 'tmall', orders: [channelOrder('REV-CANCELLED-BY-SHOP')] } });
    const orderId = imported.body.results[0].orderId as string;
    const buyerCancel = () => system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('tm-buyer-1'), body: { reason: 'changed my mind' } });
    const before = await buyerCancel();
    expect([before.status, before.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const byShop = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: merchant(), body: { reason: 'out of stock' } });
    expect([byShop.status, byShop.body.status]).toEqual([200, 'CANCELLED']);
    const after = await buyerCancel();
    expect([after.status, after.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
  });

  it("refuses the buyer's confirm-receipt of an imported order with 409 ILLEGAL_TRANSITION once it is delivered, as while it is shipped (its table has no confirm_receipt: its channel's buyer signs there), instead of a 200 as if the buyer had signed for it", async () => {
    const imported = await system.request('POST', '/v1/admin/orders/import', { token: admin(), body: { channel: 'tmall', orders: [channelOrder('REV-SHIPPED', { status: 'SHIPPED' })] } });
    const orderId = imported.body.results[0].orderId as string;
    const confirm = () => system.request('POST', `/v1/orders/${orderId}/confirm-receipt`, { token: system.token('tm-buyer-1'), body: {} });
    const shipped = await confirm();
    expect([shipped.status, shipped.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const delivered = await system.signedCallback('warehouse', { orderId, event: 'DELIVERED', at: new Date().toISOString() });
    expect(delivered.body).toEqual({ changed: true, status: 'DELIVERED' });
    const signed = await confirm();
    expect([signed.status, signed.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
  });
});
