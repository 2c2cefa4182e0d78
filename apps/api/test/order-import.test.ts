import { createHmac } from 'node:crypto';
import { buyerAddress, createTestEnv, startTcpProxy, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApi, type ApiUnderTest } from './support/api-under-test.js';

const partnerOrder = (externalOrderId: string, status: string, userId = 'tm-buyer-1') => ({
  externalOrderId,
  userId,
  placedAt: '2026-11-11T00:00:05.000Z',
  status,
  items: [
    { skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 2, unitPriceCents: 3_900, discountCents: 500 },
    { skuId: 'MUG', title: 'Mug', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 899 },
  ],
  shippingCents: 499,
  address: buyerAddress,
});

describe('importing orders from other business order systems', () => {
  let env: TestEnv;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('order_import');
    api = await startApi(env);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('keeps each order’s channel and id, replays its steps to the reported status, and shows it like any other order', async () => {
    const admin = api.token('ops', 'admin');
    const answer = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders: [partnerOrder('TM-1001', 'SHIPPED'), partnerOrder('TM-1002', 'CANCELLED')] } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ imported: 2, duplicates: 0 });
    const [shipped, cancelled] = answer.body.results as Array<{ orderId: string; outcome: string }>;

    const order = await api.request('GET', `/v1/orders/${shipped!.orderId}`, { token: admin });
    expect(order.body).toMatchObject({
      type: 'imported',
      status: 'SHIPPED',
      buyerStatus: 'To receive',
      merchantStatus: 'Shipped',
      userId: 'tm-buyer-1',
      sourceChannel: 'tmall',
      externalOrderId: 'TM-1001',
      // 2 × 39.00 − 5.00 + 8.99, shipping 4.99: the channel's prices, taken as they are
      amounts: { subtotalCents: 8_699, discountCents: 500, shippingCents: 499, payableCents: 8_698, refundedCents: 0 },
    });
    expect(order.body.items.map((item: { payableCents: number }) => item.payableCents)).toEqual([7_300, 899]);
    expect(order.body.history.map((h: { from: string | null; action: string; to: string; actor: string }) => `${h.from} -${h.action}/${h.actor}-> ${h.to}`)).toEqual([
      'null -checkout/buyer-> ACCEPTED',
      'ACCEPTED -persist/system-> PAID',
      'PAID -ship/system-> SHIPPED',
    ]);
    expect((await api.request('GET', `/v1/orders/${cancelled!.orderId}`, { token: admin })).body.status).toBe('CANCELLED');

    // one truth across channels: the buyer's list, the merchant's list and the admin search
    const buyerList = await api.request('GET', '/v1/orders', { token: api.token('tm-buyer-1') });
    expect(buyerList.body.items.map((o: { orderId: string }) => o.orderId).sort()).toEqual([shipped!.orderId, cancelled!.orderId].sort());
    const shop = await api.request('GET', '/v1/orders?type=imported', { token: api.token('shop', 'merchant') });
    expect(shop.body.items).toHaveLength(2);
    const search = await api.request('GET', '/v1/admin/orders?type=imported&status=SHIPPED', { token: admin });
    expect(search.body.items.map((o: { orderId: string }) => o.orderId)).toEqual([shipped!.orderId]);
    const metrics = await api.request('GET', '/metrics');
    expect(metrics.body).toMatch(/orders_imported_total\{channel="tmall",app="api"\} 2/);
  });

  it("refuses an order holding two merchants' goods that is still to be shipped, delivered or completed, naming it (each merchant's goods are an order of their own), and takes one that arrived closed", async () => {
    const admin = api.token('ops', 'admin');
    const kettle = { skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900 };
    const mug = { skuId: 'MUG', title: 'Mug', merchantId: 'potter', warehouseId: 'wh-west', channel: 'third_party', qty: 1, unitPriceCents: 899 };
    const mixed = (externalOrderId: string, status: string, items: object[] = [kettle, mug]) => ({ ...partnerOrder(externalOrderId, status, 'mx-buyer'), items });
    for (const status of ['PAID', 'SHIPPED', 'DELIVERED']) {
      const refused = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'mixed', orders: [partnerOrder('MX-OK', 'PAID', 'mx-buyer'), mixed(`MX-${status}`, status)] } });
      expect([refused.status, refused.body.code], status).toEqual([400, 'VALIDATION_FAILED']);
      expect(refused.body.detail).toBe(
        `Imported order MX-${status}: it holds the goods of merchants potter, shop, and each merchant moves only orders holding its own goods alone, so no one could ship, deliver or complete it: send each merchant's goods as an order of its own`,
      );
    }
    expect(await env.db.selectFrom('orders').select('order_id').where('source_channel', '=', 'mixed').execute()).toEqual([]);

    // closed in its channel, nothing is left to move: taken as it is
    const closed = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'mixed', orders: [mixed('MX-DONE', 'COMPLETED'), mixed('MX-OFF', 'CANCELLED')] } });
    expect([closed.status, closed.body.imported]).toEqual([200, 2]);
    // sent as one order per merchant, each merchant ships its own
    const split = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'mixed', orders: [mixed('MX-1-shop', 'PAID', [kettle]), mixed('MX-1-potter', 'PAID', [mug])] } });
    expect([split.status, split.body.imported]).toEqual([200, 2]);
    for (const [merchant, { orderId }] of [['shop', split.body.results[0]], ['potter', split.body.results[1]]] as const) {
      const shipped = await api.request('POST', `/v1/orders/${orderId}/actions/ship`, { token: api.token(merchant, 'merchant') });
      expect([shipped.status, shipped.body.status], merchant).toEqual([200, 'SHIPPED']);
    }
  });

  it("refuses an order whose goods are at two warehouses that is still to be shipped, delivered or completed, naming it (it has one parcel, from one warehouse), and takes one that arrived closed", async () => {
    const admin = api.token('ops', 'admin');
    const atTwo = (externalOrderId: string, status: string) => {
      const order = partnerOrder(externalOrderId, status, 'wh-buyer');
      return { ...order, items: [order.items[0], { ...order.items[1], warehouseId: 'wh-west' }] };
    };
    for (const status of ['PAID', 'SHIPPED', 'DELIVERED']) {
      const refused = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'two_wh', orders: [partnerOrder('WH-OK', 'PAID', 'wh-buyer'), atTwo(`WH-${status}`, status)] } });
      expect([refused.status, refused.body.code], status).toEqual([400, 'VALIDATION_FAILED']);
      expect(refused.body.detail).toBe(
        `Imported order WH-${status}: its goods are at warehouses wh-east, wh-west, and an imported order has one parcel, from one warehouse, so the others' goods would never be shipped: send each warehouse's goods as an order of its own`,
      );
    }
    expect(await env.db.selectFrom('orders').select('order_id').where('source_channel', '=', 'two_wh').execute()).toEqual([]);
    const closed = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'two_wh', orders: [atTwo('WH-DONE', 'COMPLETED'), atTwo('WH-OFF', 'CANCELLED')] } });
    expect([closed.status, closed.body.imported]).toEqual([200, 2]);
  });

  it("has the warehouse move an imported order on: its shipment, imported where its channel left it, follows the warehouse's callbacks, and the order with it", async () => {
    const admin = api.token('ops', 'admin');
    const imported = await api.request('POST', '/v1/admin/orders/import', {
      token: admin,
      body: { channel: 'jd', orders: [partnerOrder('JD-PAID', 'PAID', 'jd-buyer'), partnerOrder('JD-SHIPPED', 'SHIPPED', 'jd-buyer'), partnerOrder('JD-DONE', 'COMPLETED', 'jd-buyer')] },
    });
    expect(imported.body.imported).toBe(3);
    const [paid, shipped, done] = (imported.body.results as Array<{ orderId: string }>).map((result) => result.orderId);
    const view = async (orderId: string) => (await api.request('GET', `/v1/orders/${orderId}`, { token: admin })).body;
    const warehouse = (orderId: string, event: string, trackingNo?: string) => {
      const raw = JSON.stringify({ orderId, event, ...(trackingNo ? { trackingNo } : {}), at: new Date().toISOString() });
      return api.request('POST', '/v1/callbacks/warehouse', { body: raw, headers: { 'x-signature': `sha256=${createHmac('sha256', env.config.WAREHOUSE_CALLBACK_SECRET).update(raw).digest('hex')}` } });
    };
    // at the warehouse of its first line; one that arrived closed has nothing left to ship
    expect((await view(paid!)).shipments).toEqual([{ shipmentId: `shp-${paid}`, orderId: paid, warehouseId: 'wh-east', trackingNo: null, status: 'ACCEPTED', changeRefusedAt: null }]);
    expect((await view(shipped!)).shipments).toEqual([{ shipmentId: `shp-${shipped}`, orderId: shipped, warehouseId: 'wh-east', trackingNo: null, status: 'SHIPPED', changeRefusedAt: null }]);
    expect((await view(done!)).shipments).toEqual([]);

    const answers = [await warehouse(paid!, 'SHIPPED', 'JD-TRK-1'), await warehouse(paid!, 'DELIVERED'), await warehouse(paid!, 'DELIVERED'), await warehouse(paid!, 'SHIPPED', 'JD-TRK-1')];
    expect(answers.map((answer) => [answer.status, answer.body])).toEqual([
      [200, { changed: true, status: 'SHIPPED' }],
      [200, { changed: true, status: 'DELIVERED' }],
      // repeats, already passed
      [200, { changed: false, status: 'DELIVERED' }],
      [200, { changed: false, status: 'DELIVERED' }],
    ]);
    const delivered = await view(paid!);
    expect(delivered.shipments).toEqual([{ shipmentId: `shp-${paid}`, orderId: paid, warehouseId: 'wh-east', trackingNo: 'JD-TRK-1', status: 'DELIVERED', changeRefusedAt: null }]);
    expect(delivered.history.slice(-2).map((h: { from: string; action: string; to: string; actor: string; detail: string }) => `${h.from} -${h.action}/${h.actor}-> ${h.to}: ${h.detail}`)).toEqual([
      'PAID -ship/warehouse-> SHIPPED: SHIPPED, tracking JD-TRK-1',
      'SHIPPED -deliver/warehouse-> DELIVERED: DELIVERED',
    ]);
    // imported as shipped by its channel, with no tracking number: the warehouse's SHIPPED brings it, once
    const tracked = [await warehouse(shipped!, 'SHIPPED', 'JD-TRK-2'), await warehouse(shipped!, 'SHIPPED', 'JD-TRK-2')];
    expect(tracked.map((answer) => [answer.status, answer.body])).toEqual([
      [200, { changed: true, status: 'SHIPPED' }],
      [200, { changed: false, status: 'SHIPPED' }],
    ]);
    expect((await view(shipped!)).shipments).toEqual([{ shipmentId: `shp-${shipped}`, orderId: shipped, warehouseId: 'wh-east', trackingNo: 'JD-TRK-2', status: 'SHIPPED', changeRefusedAt: null }]);
    // imported as shipped: the warehouse delivers it
    const delivery = await warehouse(shipped!, 'DELIVERED');
    expect([delivery.status, delivery.body]).toEqual([200, { changed: true, status: 'DELIVERED' }]);
    expect((await view(shipped!)).shipments).toMatchObject([{ status: 'DELIVERED' }]);
  });

  it('imports an order once however often it is sent, even twice at the same moment', async () => {
    const admin = api.token('ops', 'admin');
    const body = { channel: 'partner-x', orders: [partnerOrder('PX-1', 'PAID', 'px-buyer'), partnerOrder('PX-2', 'DELIVERED', 'px-buyer')] };
    const answers = await Promise.all(Array.from({ length: 5 }, () => api.request('POST', '/v1/admin/orders/import', { token: admin, body })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.reduce((sum, a) => sum + a.body.imported, 0)).toBe(2);
    const ids = new Set(answers.flatMap((a) => a.body.results.map((r: { orderId: string }) => r.orderId)));
    expect(ids.size).toBe(2);
    const rows = await env.db.selectFrom('orders').select('order_id').where('source_channel', '=', 'partner-x').execute();
    expect(rows).toHaveLength(2);
  });

  it('moves an order imported before on to the status its channel reports when sent again, as the channel, step by step; changes nothing for a status it has or passed, and answers conflict for one it cannot reach', async () => {
    const admin = api.token('ops', 'admin');
    const send = (...orders: Array<[string, string]>) =>
      api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'pdd', orders: orders.map(([id, status]) => partnerOrder(id, status, 'pdd-buyer')) } });
    const first = await send(['PDD-1', 'PAID'], ['PDD-2', 'PAID'], ['PDD-3', 'SHIPPED'], ['PDD-4', 'PAID']);
    expect(first.body).toMatchObject({ imported: 4, duplicates: 0, advanced: 0, conflicts: 0 });
    const [one, two, three, four] = (first.body.results as Array<{ orderId: string; status: string }>).map((result) => result.orderId);
    expect(first.body.results.map((result: { status: string }) => result.status)).toEqual(['PAID', 'PAID', 'SHIPPED', 'PAID']);
    const view = async (orderId: string) => (await api.request('GET', `/v1/orders/${orderId}`, { token: admin })).body;
    // the steps taken since its import
    const steps = async (orderId: string) => (await view(orderId)).history.filter((h: { detail: string }) => h.detail.startsWith('reported ')).map((h: { from: string; action: string; to: string; actor: string; detail: string }) => `${h.from} -${h.action}/${h.actor}-> ${h.to}: ${h.detail}`);

    const again = await send(['PDD-1', 'SHIPPED'], ['PDD-2', 'COMPLETED'], ['PDD-3', 'CANCELLED'], ['PDD-4', 'PAID']);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ imported: 0, duplicates: 1, advanced: 2, conflicts: 1 });
    expect(again.body.results.map(({ outcome, status }: { outcome: string; status: string }) => `${outcome} ${status}`)).toEqual(['advanced SHIPPED', 'advanced COMPLETED', 'conflict SHIPPED', 'duplicate PAID']);
    expect(await steps(one!)).toEqual(['PAID -ship/system-> SHIPPED: reported SHIPPED by pdd order PDD-1']);
    expect(await steps(two!)).toEqual([
      'PAID -ship/system-> SHIPPED: reported COMPLETED by pdd order PDD-2',
      'SHIPPED -deliver/system-> DELIVERED: reported COMPLETED by pdd order PDD-2',
      'DELIVERED -complete/system-> COMPLETED: reported COMPLETED by pdd order PDD-2',
    ]);
    // the parcel moves with the order, as the warehouse's callbacks would have moved it
    expect((await view(one!)).shipments.map((shipment: { status: string }) => shipment.status)).toEqual(['SHIPPED']);
    expect((await view(two!)).shipments.map((shipment: { status: string }) => shipment.status)).toEqual(['DELIVERED']);
    expect(await steps(three!)).toEqual([]);

    // a status it passed here (delivered by its warehouse first) changes nothing
    const stale = await send(['PDD-2', 'SHIPPED'], ['PDD-1', 'SHIPPED']);
    expect(stale.body.results.map(({ outcome, status }: { outcome: string; status: string }) => `${outcome} ${status}`)).toEqual(['duplicate COMPLETED', 'duplicate SHIPPED']);
    // cancelled in its channel while it waits for its warehouse: cancelled here, and the warehouse told to drop the parcel
    const cancelled = await send(['PDD-4', 'CANCELLED']);
    expect(cancelled.body.results.map(({ outcome, status }: { outcome: string; status: string }) => `${outcome} ${status}`)).toEqual(['advanced CANCELLED']);
    expect(await steps(four!)).toEqual(['PAID -cancel/system-> CANCELLED: reported CANCELLED by pdd order PDD-4']);
    const toldOf = async () => (await api.deps.queues.fulfillment.getJobs(['waiting', 'delayed', 'active'])).filter((job) => job.data.orderId === four);
    const told = await toldOf();
    expect(told.map((job) => job.name)).toEqual(['update-fulfilment']);
    // that job lost (Redis away as the cancel committed): the channel's next sending tells the warehouse again
    await told[0]!.remove();
    const again2 = await send(['PDD-4', 'CANCELLED']);
    expect(again2.body.results.map(({ outcome, status }: { outcome: string; status: string }) => `${outcome} ${status}`)).toEqual(['duplicate CANCELLED']);
    expect((await toldOf()).map((job) => job.name)).toEqual(['update-fulfilment']);
    expect(await env.db.selectFrom('orders').select('order_id').where('source_channel', '=', 'pdd').execute()).toHaveLength(4);
  });

  it("counts by channel each order its channel reports in a status it cannot reach here, so that someone settles it: cancelled there after it shipped here, shipped there after it was cancelled here", async () => {
    const admin = api.token('ops', 'admin');
    const send = (...orders: Array<[string, string]>) =>
      api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'kx', orders: orders.map(([id, status]) => partnerOrder(id, status, 'kx-buyer')) } });
    const first = await send(['KX-1', 'SHIPPED'], ['KX-2', 'PAID']);
    const cancelledHere = first.body.results[1].orderId as string;
    const cancel = await api.request('POST', `/v1/orders/${cancelledHere}/cancel`, { token: admin, body: { reason: 'out of stock at the warehouse' } });
    expect([cancel.status, cancel.body.status]).toEqual([200, 'CANCELLED']);

    // the channel paid the first one's buyer back though its goods left; it says it shipped the second, cancelled here
    const again = await send(['KX-1', 'CANCELLED'], ['KX-2', 'SHIPPED']);
    expect(again.body.results.map(({ outcome, status }: { outcome: string; status: string }) => `${outcome} ${status}`)).toEqual(['conflict SHIPPED', 'conflict CANCELLED']);
    expect((await api.request('GET', '/metrics')).body).toMatch(/imported_order_conflicts_total\{channel="kx",app="api"\} 2\n/);
  });

  it('moves an order on once when its channel sends the same update many times at once', async () => {
    const admin = api.token('ops', 'admin');
    const send = (status: string) => api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'dy', orders: [partnerOrder('DY-1', status, 'dy-buyer')] } });
    const orderId = (await send('PAID')).body.results[0].orderId as string;
    const answers = await Promise.all(Array.from({ length: 40 }, () => send('COMPLETED')));
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((answer) => `${answer.body.results[0].orderId} ${answer.body.results[0].status}`))).toEqual(new Set([`${orderId} COMPLETED`]));
    expect(answers.filter((answer) => answer.body.results[0].outcome === 'advanced').length).toBeGreaterThanOrEqual(1);
    const history = await env.db.selectFrom('order_history').select(['action', 'to_status']).where('order_id', '=', orderId).orderBy('version').execute();
    expect(history.map((step) => `${step.action} ${step.to_status}`)).toEqual(['checkout ACCEPTED', 'persist PAID', 'ship SHIPPED', 'deliver DELIVERED', 'complete COMPLETED']);
  });

  it('imports overlapping batches (larger than a checkout’s body limit) sent at once in opposite orders: each order once, no request failing on a deadlock', async () => {
    const admin = api.token('ops', 'admin');
    const orders = Array.from({ length: 60 }, (_, i) => partnerOrder(`OV-${String(i).padStart(2, '0')}`, 'PAID', 'ov-buyer'));
    const batches = [orders, [...orders].reverse(), orders.slice(20), [...orders.slice(0, 40)].reverse()];
    expect(JSON.stringify({ channel: 'partner-ov', orders }).length).toBeGreaterThan(16_384);
    const answers = await Promise.all(batches.map((batch) => api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'partner-ov', orders: batch } })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const rows = await env.db.selectFrom('orders').select('external_order_id').where('source_channel', '=', 'partner-ov').execute();
    expect(rows).toHaveLength(60);
    // an anonymous body that large is refused before it is read
    const anonymous = await api.request('POST', '/v1/admin/orders/import', { body: { channel: 'partner-ov', orders } });
    expect(anonymous.status).toBe(401);
  });

  it('refuses a body past its 2 MiB limit with 413 naming the limit, as its OpenAPI description states, and a checkout past its own limit naming that one', async () => {
    const admin = api.token('ops', 'admin');
    const limit = 2 * 1024 * 1024;
    const oversized = JSON.stringify({ channel: 'big', orders: Array.from({ length: 500 }, (_, i) => ({ ...partnerOrder(`BIG-${i}`, 'PAID'), note: 'x'.repeat(limit / 500) })) });
    const refused = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: oversized });
    expect([refused.status, String(refused.headers['content-type'])]).toEqual([413, expect.stringMatching(/^application\/problem\+json/)]);
    expect(refused.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', detail: 'Request body is too large: this route accepts at most 2097152 bytes (2 MiB)' });
    const documented = (await api.request('GET', '/docs/json')).body.paths['/v1/admin/orders/import'].post.description;
    expect(documented).toMatch(/^Up to 500 orders in a body of at most 2097152 bytes \(2 MiB\); a larger body is refused with 413 PAYLOAD_TOO_LARGE/);

    const checkout = await api.request('POST', '/v1/orders', { token: api.token('tia'), headers: { 'idempotency-key': 'big-1' }, body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: { ...buyerAddress, line1: 'x'.repeat(env.config.BODY_LIMIT_BYTES) } } });
    expect([checkout.status, checkout.body.detail]).toEqual([413, `Request body is too large: this route accepts at most ${env.config.BODY_LIMIT_BYTES} bytes (${env.config.BODY_LIMIT_BYTES / 1024} KiB)`]);
  });

  it('refuses a bad batch as a whole, naming what is wrong, and writes nothing of it', async () => {
    const admin = api.token('ops', 'admin');
    const before = (await env.db.selectFrom('orders').select('order_id').execute()).length;
    const tooMuchDiscount = partnerOrder('BAD-1', 'PAID');
    tooMuchDiscount.items[0]!.discountCents = 10_000;
    for (const [body, token, status, detail] of [
      [{ channel: 'tmall', orders: [partnerOrder('OK-1', 'PAID'), tooMuchDiscount] }, admin, 400, /BAD-1.*discount above/],
      [{ channel: 'tmall', orders: [partnerOrder('DUP-1', 'PAID'), partnerOrder('DUP-1', 'PAID')] }, admin, 400, /DUP-1 appears twice/],
      [{ channel: 'tmall', orders: [partnerOrder('ST-1', 'PENDING_PAYMENT')] }, admin, 400, /status/],
      [{ channel: 'Tmall Global', orders: [partnerOrder('CH-1', 'PAID')] }, admin, 400, /channel/],
      [{ channel: 'tmall', orders: [{ ...partnerOrder('PR-1', 'PAID'), payableCents: 1 }] }, admin, 400, /payableCents|additional/],
      [{ channel: 'tmall', orders: [partnerOrder('AUTH-1', 'PAID')] }, api.token('shop', 'merchant'), 403, /admin/],
      // MySQL compares ids without their trailing spaces: 'PAD-1 ' would be 'PAD-1' there
      [{ channel: 'tmall', orders: [partnerOrder('PAD-1 ', 'PAID')] }, admin, 400, /externalOrderId/],
      // valid RFC 3339, but no time an order was placed at: a leap second, a year past 9999
      [{ channel: 'tmall', orders: [{ ...partnerOrder('LEAP-1', 'PAID'), placedAt: '2026-12-31T23:59:60Z' }] }, admin, 400, /LEAP-1.*placedAt/],
      [{ channel: 'tmall', orders: [{ ...partnerOrder('Y10K-1', 'PAID'), placedAt: '9999-12-31T23:59:59-23:59' }] }, admin, 400, /Y10K-1.*placedAt/],
      [{ channel: 'tmall', orders: [{ ...partnerOrder('LATER-1', 'PAID'), placedAt: new Date(Date.now() + 3_600_000).toISOString() }] }, admin, 400, /LATER-1.*placedAt .* is in the future/],
    ] as const) {
      const answer = await api.request('POST', '/v1/admin/orders/import', { token, body });
      expect(answer.status).toBe(status);
      expect(String(answer.headers['content-type'])).toMatch(/^application\/problem\+json/);
      expect(answer.body.detail).toMatch(detail);
    }
    expect((await env.db.selectFrom('orders').select('order_id').execute()).length).toBe(before);
  });

  it('refuses a batch with an order holding two lines of one SKU with 400 VALIDATION_FAILED naming the order and the SKU, and writes nothing of it', async () => {
    const admin = api.token('ops', 'admin');
    const twoKettleLines = partnerOrder('KETTLE-TWICE', 'PAID');
    twoKettleLines.items.push({ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_500, discountCents: 0 });
    const answer = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'twice', orders: [partnerOrder('ONCE-1', 'PAID'), twoKettleLines] } });
    expect([answer.status, answer.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect(String(answer.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(answer.body.detail).toBe(
      'Imported order KETTLE-TWICE: SKU KETTLE is on lines 1 and 3; an order holds one line per SKU (its refunds, returns and merchants name a line by its SKU): send them as one line',
    );
    expect(await env.db.selectFrom('orders').select('order_id').where('source_channel', '=', 'twice').execute()).toEqual([]);

    // one line of the 3 kettles, the second price as a discount: the same amounts, taken
    const oneLine = partnerOrder('KETTLE-ONCE', 'PAID');
    oneLine.items[0] = { ...oneLine.items[0]!, qty: 3, discountCents: 500 + 400 };
    const taken = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'twice', orders: [oneLine] } });
    expect([taken.status, taken.body.imported]).toEqual([200, 1]);
  });
});

describe('importing orders while the api cannot reach Redis', () => {
  let env: TestEnv;
  let proxy: TcpProxy;
  let api: ApiUnderTest;

  beforeAll(async () => {
    env = await createTestEnv('order_import_redis_away');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    api = await startApi({ ...env, config: { ...env.config, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: 500 } });
  });
  afterAll(async () => {
    await api?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it("counts the batch's new orders as they are saved, though moving on a re-sent one fails after (its warehouse not told of its cancel) and a replay finds them duplicates", { timeout: 30_000 }, async () => {
    const admin = api.token('ops', 'admin');
    const send = (...orders: Array<[string, string]>) =>
      api.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'jd', orders: orders.map(([id, status]) => partnerOrder(id, status, 'jd-buyer')) } });
    const imported = async () => (await api.deps.metrics.ordersImported.get()).values.find(({ labels }) => labels.channel === 'jd')?.value;
    expect((await send(['JD-1', 'PAID'])).body.imported).toBe(1);

    await proxy.cut();
    try {
      const failed = await send(['JD-1', 'CANCELLED'], ['JD-2', 'PAID'], ['JD-3', 'SHIPPED']);
      expect(failed.status).toBeGreaterThanOrEqual(500);
    } finally {
      await proxy.restore();
    }
    expect(await env.db.selectFrom('orders').select('external_order_id').where('source_channel', '=', 'jd').orderBy('external_order_id').execute()).toEqual([
      { external_order_id: 'JD-1' },
      { external_order_id: 'JD-2' },
      { external_order_id: 'JD-3' },
    ]);
    expect(await imported()).toBe(3);

    // sent again once the api has its Redis connections back
    const replay = await vi.waitFor(
      async () => {
        const answer = await send(['JD-1', 'CANCELLED'], ['JD-2', 'PAID'], ['JD-3', 'SHIPPED']);
        expect(answer.status).toBe(200);
        return answer;
      },
      { timeout: 10_000, interval: 250 },
    );
    expect(replay.body).toMatchObject({ imported: 0, duplicates: 3, advanced: 0 });
    expect(await imported()).toBe(3);
  });
});
