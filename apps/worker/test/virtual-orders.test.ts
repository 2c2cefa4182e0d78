import { buyerAddress } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * A virtual order (vouchers, top-ups) from its price to its end: it ships nothing, so it
 * pays no shipping; paying delivers and completes it; and what a buyer, merchant or admin
 * may still do with it then; it needs no delivery address, which every other cart still
 * does. Beside it, the persist step each type counts in its metrics.
 */
describe('virtual orders: priced without shipping, delivered with their payment', () => {
  let system: OrderSystem;
  const admin = () => system.token('ops', 'admin');

  beforeAll(async () => {
    system = await startOrderSystem('virtual_orders', { RECONCILE_INTERVAL_MS: '0' });
    const sku = { merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', deduction: 'placement' } as const;
    await system.createSku({ ...sku, skuId: 'VOUCHER', priceCents: 2_500, stock: 100, orderType: 'virtual' });
    await system.createSku({ ...sku, skuId: 'LAST-TOPUP', priceCents: 1_000, stock: 1, deduction: 'payment', orderType: 'virtual' });
    await system.createSku({ ...sku, skuId: 'NEXT-CONSOLE', priceCents: 50_000, stock: 10, orderType: 'presale' });
    await system.createSku({ ...sku, skuId: 'MUG', priceCents: 899, stock: 10 });
    expect((await system.request('PUT', '/v1/admin/warehouses/wh-east/shipping', { token: admin(), body: { feeCents: 499 } })).status).toBe(200);
  });
  afterAll(async () => system?.close());

  /** A checkout as the buyer's app sends it, with no address unless one is given. */
  const placeOrder = (buyer: string, key: string, body: Record<string, unknown>) => system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': key }, body });
  const pay = (orderId: string, buyer: string) => system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
  const stock = async (skuId: string) => (await system.request('GET', `/v1/admin/skus/${skuId}`, { token: admin() })).body.stock;
  const persistsCounted = async (type: string) =>
    (await system.workers.deps.metrics.transitions.get()).values.filter((v) => v.labels.type === type && v.labels.action === 'persist').map((v) => ({ from: v.labels.from, to: v.labels.to, orders: v.value }));

  it('charges two 25.00 vouchers 50.00 from a warehouse whose parcels cost 4.99: nothing ships, so no shipping', async () => {
    const orderId = await system.checkout('val', [{ skuId: 'VOUCHER', qty: 2 }]);
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect(pending.amounts).toEqual({ subtotalCents: 5_000, discountCents: 0, shippingCents: 0, payableCents: 5_000, refundedCents: 0 });
    expect((await pay(orderId, 'val')).status).toBe(202);
    await system.waitForStatus(orderId, 'COMPLETED');
    const charged = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.filter((p: { orderId: string }) => p.orderId === orderId);
    expect(charged.map((p: { amountCents: number }) => p.amountCents)).toEqual([5_000]);
  });

  it('sells two gift cards to a buyer who gives no address: accepted, priced without shipping, paid and completed, the address null throughout', async () => {
    const placed = await placeOrder('gia', 'gift-cards', { items: [{ skuId: 'VOUCHER', qty: 2 }] });
    expect([placed.status, placed.body.status]).toEqual([202, 'ACCEPTED']);
    const { orderId } = placed.body;
    expect((await system.request('GET', `/v1/orders/${orderId}`, { token: system.token('gia') })).body.address).toBeNull();
    const pending = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect([pending.address, pending.amounts.shippingCents, pending.amounts.payableCents]).toEqual([null, 0, 5_000]);
    expect((await pay(orderId, 'gia')).status).toBe(202);
    expect((await system.waitForStatus(orderId, 'COMPLETED')).address).toBeNull();
    const listed = (await system.request('GET', '/v1/orders', { token: system.token('gia') })).body.items;
    expect(listed.map((order: { orderId: string; address: unknown }) => [order.orderId, order.address])).toEqual([[orderId, null]]);
    const [row] = await system.env.db.selectFrom('orders').select('address').where('order_id', '=', orderId).execute();
    expect(row).toEqual({ address: null });
  });

  it('keeps the address a gift card checkout was given, and refuses to change it as it refuses one for a gift card without: a virtual order ships nothing', async () => {
    const withAddress = (await placeOrder('hal', 'gift-card-to-hal', { items: [{ skuId: 'VOUCHER', qty: 1 }], address: buyerAddress })).body.orderId;
    const without = (await placeOrder('hal', 'gift-card-no-address', { items: [{ skuId: 'VOUCHER', qty: 1 }] })).body.orderId;
    expect((await system.waitForStatus(withAddress, 'PENDING_PAYMENT')).address).toEqual(buyerAddress);
    await system.waitForStatus(without, 'PENDING_PAYMENT');
    for (const [orderId, token] of [withAddress, without].flatMap((id) => [[id, system.token('hal')], [id, admin()]])) {
      const refused = await system.request('PATCH', `/v1/orders/${orderId}/address`, { token, body: { address: { ...buyerAddress, city: 'Elsewhere' } } });
      expect([refused.status, refused.body.code, refused.body.detail]).toEqual([409, 'ILLEGAL_TRANSITION', 'A virtual order ships nothing: it has no delivery address to change']);
    }
    expect([(await system.order(withAddress)).address, (await system.order(without)).address]).toEqual([buyerAddress, null]);
  });

  it('still refuses a standard or presale cart without an address, as before: 400 VALIDATION_FAILED, nothing reserved', async () => {
    for (const [key, body] of [
      ['mug', { items: [{ skuId: 'MUG', qty: 1 }] }],
      ['console', { items: [{ skuId: 'NEXT-CONSOLE', qty: 1 }] }],
      ['mug-as-virtual', { items: [{ skuId: 'MUG', qty: 1 }], orderType: 'virtual' }],
    ] as const) {
      const refused = await placeOrder('ivo', key, body);
      expect([key, refused.status, refused.body.code]).toEqual([key, 400, 'VALIDATION_FAILED']);
      expect(refused.body.detail).toMatch(/^body must have required property 'address'/);
    }
    expect(await stock('MUG')).toEqual({ available: 10, reserved: 0, sold: 0 });
    expect((await system.request('GET', '/v1/orders', { token: system.token('ivo') })).body.items).toEqual([]);
  });

  it('counts each persisted order into the status its type enters: a presale into PENDING_DEPOSIT, a virtual order into PENDING_PAYMENT', async () => {
    const virtualBefore = (await persistsCounted('virtual'))[0]?.orders ?? 0;
    const presale = await system.checkout('pam', [{ skuId: 'NEXT-CONSOLE', qty: 1 }]);
    const voucher = await system.checkout('vic', [{ skuId: 'VOUCHER', qty: 1 }]);
    await system.waitForStatus(presale, 'PENDING_DEPOSIT');
    await system.waitForStatus(voucher, 'PENDING_PAYMENT');
    // counted just after the batch's commit: a read right after the orders' statuses can come first
    await expect.poll(() => persistsCounted('presale'), { timeout: 5_000 }).toEqual([{ from: 'ACCEPTED', to: 'PENDING_DEPOSIT', orders: 1 }]);
    await expect.poll(() => persistsCounted('virtual'), { timeout: 5_000 }).toEqual([{ from: 'ACCEPTED', to: 'PENDING_PAYMENT', orders: virtualBefore + 1 }]);
  });

  it('refuses to cancel or refund a completed virtual order: no one may, the voucher was delivered with the payment', async () => {
    const orderId = await system.checkout('wes', [{ skuId: 'VOUCHER', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await pay(orderId, 'wes');
    await system.waitForStatus(orderId, 'COMPLETED');
    for (const token of [system.token('wes'), system.token('shop', 'merchant'), admin()]) {
      for (const step of ['cancel', 'refunds']) {
        const refused = await system.request('POST', `/v1/orders/${orderId}/${step}`, { token, body: { reason: 'code did not work' } });
        expect([step, refused.status, refused.body.code]).toEqual([step, 409, 'ILLEGAL_TRANSITION']);
      }
    }
    for (const token of [system.token('shop', 'merchant'), admin()]) expect((await system.request('GET', `/v1/orders/${orderId}/actions`, { token })).body.actions).toEqual([]);
    const order = await system.order(orderId);
    expect([order.status, order.amounts.refundedCents]).toEqual(['COMPLETED', 0]);
  });

  it('refunds and closes a virtual order whose payment-time top-up sold out before its payment: REFUNDING, then REFUNDED', async () => {
    const [first, second] = [await system.checkout('xan', [{ skuId: 'LAST-TOPUP', qty: 1 }]), await system.checkout('yul', [{ skuId: 'LAST-TOPUP', qty: 1 }])];
    await Promise.all([system.waitForStatus(first, 'PENDING_PAYMENT'), system.waitForStatus(second, 'PENDING_PAYMENT')]);
    // both pay while the top-up is on sale; the first's payment takes it
    expect((await system.payInRace({ orderId: first, buyer: 'xan' }, { orderId: second, buyer: 'yul' })).status).toBe(202);
    await system.waitForStatus(first, 'COMPLETED');
    const refunded = await system.waitForStatus(second, 'REFUNDED');
    expect(refunded.amounts.refundedCents).toBe(1_000);
    expect(refunded.history.map((h: { from: string; action: string; actor: string }) => `${h.from}>${h.action}/${h.actor}`).slice(-3)).toEqual([
      'PENDING_PAYMENT>pay/payment',
      'PAID>refund/system',
      'REFUNDING>refund_succeeded/payment',
    ]);
    expect(await stock('LAST-TOPUP')).toEqual({ available: 0, reserved: 0, sold: 1 });
  });
});
