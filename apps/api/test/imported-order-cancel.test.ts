import { createHmac } from 'node:crypto';
import { channelOrder, createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

describe('a cancelled imported order: its warehouse is asked to drop the parcel', () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('imported_order_cancel');
    api = await startApi(env);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const admin = () => api.token('ops', 'admin');
  /** Imports the channel's orders; their ids, in the order sent. */
  const imported = async (...orders: Array<ReturnType<typeof channelOrder>>) => {
    const answer = await api.request('POST', '/v1/admin/orders/import', { token: admin(), body: { channel: 'tmall', orders } });
    expect(answer.status).toBe(200);
    return (answer.body.results as Array<{ orderId: string }>).map((result) => result.orderId);
  };
  const view = async (orderId: string) => (await api.request('GET', `/v1/orders/${orderId}`, { token: admin() })).body as { status: string; shipments: Array<{ status: string }> };
  /** How many times the worker was asked to tell the order's warehouse what it ships now (nothing, once cancelled). */
  const warehouseUpdates = async (orderId: string) =>
    (await api.deps.queues.fulfillment.getJobs(['waiting', 'delayed', 'active'])).filter((job) => job.name === 'update-fulfilment' && job.data.orderId === orderId);
  const warehouseUpdatesAsked = async (orderId: string) => (await warehouseUpdates(orderId)).length;

  it('cancelled by an admin or by its merchant while its parcel waits at the warehouse: the warehouse is asked to drop it, and the parcel reads ACCEPTED until it has', async () => {
    const [byAdmin, byMerchant] = await imported(channelOrder('TM-C1', { status: 'PAID' }), channelOrder('TM-C2', { status: 'PAID' }));
    expect((await view(byAdmin!)).shipments).toMatchObject([{ status: 'ACCEPTED' }]);

    const cancels = [
      await api.request('POST', `/v1/orders/${byAdmin}/cancel`, { token: admin(), body: { reason: 'the channel called it off' } }),
      await api.request('POST', `/v1/orders/${byMerchant}/cancel`, { token: api.token('shop', 'merchant'), body: { reason: 'out of kettles' } }),
    ];
    // no worker runs here: the warehouse has not been told yet, and may still ship the parcel
    expect(cancels.map((answer) => [answer.status, answer.body.status, answer.body.shipments])).toEqual([
      [200, 'CANCELLED', [{ shipmentId: `shp-${byAdmin}`, orderId: byAdmin, warehouseId: 'wh-east', trackingNo: null, status: 'ACCEPTED', changeRefusedAt: null }]],
      [200, 'CANCELLED', [{ shipmentId: `shp-${byMerchant}`, orderId: byMerchant, warehouseId: 'wh-east', trackingNo: null, status: 'ACCEPTED', changeRefusedAt: null }]],
    ]);
    expect([await warehouseUpdatesAsked(byAdmin!), await warehouseUpdatesAsked(byMerchant!)]).toEqual([1, 1]);
    // counted as what they are on the dashboard: paid in their channel, not cancelled before a payment
    const cancelled = async () => Object.fromEntries((await api.deps.metrics.cancellations.get()).values.map(({ labels, value }) => [labels.stage, value]));
    expect(await cancelled()).toMatchObject({ paid_in_channel: 2, before_payment: 0 });
    // cancelling again changes nothing, and adds no second ask beside the waiting one, which drops the parcel when it runs
    const cancelAgain = () => api.request('POST', `/v1/orders/${byAdmin}/cancel`, { token: admin(), body: { reason: 'again' } });
    const again = await cancelAgain();
    expect([again.status, again.body.status, again.body.shipments]).toMatchObject([200, 'CANCELLED', [{ status: 'ACCEPTED' }]]);
    expect(await warehouseUpdatesAsked(byAdmin!)).toBe(1);
    // the first cancel died before asking: cancelling again asks
    await Promise.all((await warehouseUpdates(byAdmin!)).map((job) => job.remove()));
    await cancelAgain();
    expect(await warehouseUpdatesAsked(byAdmin!)).toBe(1);
  });

  it('cancelled by its channel (the system) before the warehouse was told: its SHIPPED records the parcel as gone, the order cancelled still, and asks no drop of a parcel that left', async () => {
    const [order] = await imported(channelOrder('TM-C3', { status: 'PAID' }));
    await api.deps.orders.applyTransition({ orderId: order!, action: 'cancel', actor: 'system', at: new Date(), detail: 'cancelled in tmall' });
    expect(await view(order!)).toMatchObject({ status: 'CANCELLED', shipments: [{ status: 'ACCEPTED' }] });

    const raw = JSON.stringify({ orderId: order, event: 'SHIPPED', trackingNo: 'TRK-1', at: new Date().toISOString() });
    const late = await api.request('POST', '/v1/callbacks/warehouse', {
      body: raw,
      headers: { 'x-signature': `sha256=${createHmac('sha256', env.config.WAREHOUSE_CALLBACK_SECRET).update(raw).digest('hex')}` },
    });
    expect([late.status, late.body]).toEqual([200, { changed: true, status: 'CANCELLED' }]);
    expect(await view(order!)).toMatchObject({ status: 'CANCELLED', shipments: [{ status: 'SHIPPED', trackingNo: 'TRK-1' }] });
    expect(await warehouseUpdatesAsked(order!)).toBe(0);
  });

  it('an imported order whose parcel has left cannot be cancelled, and its parcel stays SHIPPED', async () => {
    const [order] = await imported(channelOrder('TM-C4', { status: 'SHIPPED' }));
    const refused = await api.request('POST', `/v1/orders/${order}/cancel`, { token: admin(), body: { reason: 'too late' } });
    expect([refused.status, refused.body.code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    expect(await view(order!)).toMatchObject({ status: 'SHIPPED', shipments: [{ status: 'SHIPPED' }] });
  });
});
