import { rm } from 'node:fs/promises';
import { buyerAddress, buyerOutsideBucketZero, signToken, waitFor } from '@orders/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { buildConsole, launchChromium, serveConsole, signIn } from './support/browser.js';

/** What the console asks on a click of `button` (the browser's confirm box), answered no: nothing is sent. */
async function questionDeclined(page: Page, button: Locator): Promise<string> {
  const question = new Promise<string>((resolve) =>
    page.once('dialog', (dialog) => {
      resolve(dialog.message());
      void dialog.dismiss();
    }),
  );
  await button.click();
  return question;
}

/**
 * What a shop's staff meet in the console day to day: a search that survives a reload and a
 * look at one of its orders, and dates typed into forms that say which zone they are in. The
 * console is built into a folder of this file's own and served to the browser from there, as
 * split-orders-list.test.ts does, its API calls going to the api as from the api's /console.
 */
describe('the console as staff use it', () => {
  let system: OrderSystem;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let built: string;

  const shownText = async (elements: Locator): Promise<string> => (await elements.allTextContents()).join('\n');

  /** Serves `into` this file's own build of the console and signs in with `token`. */
  async function serveAndSignIn(into: Page, token: string): Promise<void> {
    await serveConsole(into, base, built);
    await signIn(into, base, token);
  }

  beforeAll(async () => {
    built = await buildConsole('console-audit');
    system = await startOrderSystem('console_audit', { WAREHOUSE_SIM_STEP_MS: '0' });
    base = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}`;
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'placement' });
    browser = await launchChromium();
    // an operator in Shanghai: eight hours ahead of the UTC the console shows its times in
    context = await browser.newContext({ viewport: { width: 1366, height: 768 }, timezoneId: 'Asia/Shanghai' });
    page = await context.newPage();
    await serveAndSignIn(page, system.token('ops', 'admin'));
  });
  afterAll(async () => {
    await browser?.close();
    await system?.close();
    if (built) await rm(built, { recursive: true, force: true });
  });

  it("keeps an operator's search of ivy's orders through a reload of the page and through Back from one of them", async () => {
    const ivys = await system.checkout('ivy', [{ skuId: 'KETTLE', qty: 1 }]);
    const zeds = await system.checkout('zed', [{ skuId: 'KETTLE', qty: 2 }]);
    for (const orderId of [ivys, zeds]) await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const listed = () => shownText(page.locator('tbody th[scope="row"] > a'));

    await page.getByLabel('Buyer').fill('ivy');
    await page.getByLabel('Status').selectOption('PENDING_PAYMENT');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(listed).toBe(ivys);

    await page.reload();
    await page.getByRole('heading', { name: 'Orders', level: 1 }).waitFor();
    expect(await page.getByLabel('Buyer').inputValue()).toBe('ivy');
    expect(await page.getByLabel('Status').inputValue()).toBe('PENDING_PAYMENT');
    await expect.poll(listed).toBe(ivys);
    // the reload's first read was the search: zed's order never showed
    expect(await shownText(page.locator('main'))).not.toContain(zeds);

    await page.getByRole('link', { name: ivys }).click();
    await page.getByRole('heading', { name: `Order ${ivys}` }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Orders', level: 1 }).waitFor();
    expect(await page.getByLabel('Buyer').inputValue()).toBe('ivy');
    await expect.poll(listed).toBe(ivys);

    // so does the order page's own way back
    await page.getByRole('link', { name: ivys }).click();
    await page.getByRole('heading', { name: `Order ${ivys}` }).waitFor();
    await page.getByRole('link', { name: '← Orders' }).click();
    await page.getByRole('heading', { name: 'Orders', level: 1 }).waitFor();
    expect(await page.getByLabel('Buyer').inputValue()).toBe('ivy');
    await expect.poll(listed).toBe(ivys);

    // the top bar's Orders starts over from every order, as its address says
    await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Orders' }).click();
    await expect.poll(listed).toContain(zeds);
    expect(await page.getByLabel('Buyer').inputValue()).toBe('');
    await page.getByLabel('Buyer').fill('ivy');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(listed).toBe(ivys);

    // Clear starts over, and so does the next reload
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(listed).toContain(zeds);
    await page.reload();
    await expect.poll(listed).toContain(zeds);
    expect(await page.getByLabel('Buyer').inputValue()).toBe('');
  });

  it('says a day with a five-digit year typed into the search is no day and searches nothing, and shows the list for an address holding one', async () => {
    const ulas = await system.checkout('ula', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(ulas, 'PENDING_PAYMENT');
    const listed = () => shownText(page.locator('tbody th[scope="row"] > a'));
    await page.goto(`${base}/console/`);
    await page.getByLabel('Buyer').fill('ula');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(listed).toBe(ulas);

    // a date box takes a year of up to six digits: the api searches years 1000 to 9999
    await page.getByLabel('Placed from (UTC day)').focus();
    await page.keyboard.type('0501');
    await page.keyboard.type('20241');
    expect(await page.getByLabel('Placed from (UTC day)').inputValue()).toBe('20241-05-01');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toBe('Not searched: Placed from: 20241-05-01 is not a day from 1000-01-01 to 9999-12-31.');
    expect(new URL(page.url()).search).toBe('?userId=ula');
    expect(await listed()).toBe(ulas);

    await page.goto(`${base}/console/?userId=ula&from=20241-05-01`);
    await expect.poll(listed).toBe(ulas);
    expect(await page.getByLabel('Placed from (UTC day)').inputValue()).toBe('');
  });

  it("opens an order of a hot SKU split into stock buckets, whose id names its bucket, from the list and from a link to it", async () => {
    await system.createSku({ skuId: 'HOT-MUG', priceCents: 1_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 400, deduction: 'placement', stockBuckets: 4 });
    const orderId = await system.checkout(buyerOutsideBucketZero('hana', 4), [{ skuId: 'HOT-MUG', qty: 1 }]);
    expect(orderId).toMatch(/-g[1-3]$/);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');

    await page.goto(`${base}/console/`);
    await page.getByRole('link', { name: orderId }).click();
    await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('PENDING_PAYMENT');

    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
    expect(await page.getByRole('heading', { name: 'Orders', level: 1 }).count()).toBe(0);
  });

  it('says which zone the dates typed into the forms are in: UTC days for the search, the browser\'s own time for a flash sale', async () => {
    await page.goto(`${base}/console/`);
    // the list shows its times in UTC: a day searched for is a UTC day, and says so
    await expect.poll(() => page.getByLabel('Placed from (UTC day)').count()).toBe(1);
    expect(await page.getByLabel('Placed until (UTC day)').count()).toBe(1);

    await page.getByRole('link', { name: 'Flash sales' }).click();
    const starts = page.getByLabel('Starts (your time, Asia/Shanghai)');
    await starts.waitFor();
    expect(await page.getByLabel('Ends (your time, Asia/Shanghai)').count()).toBe(1);
    // 20:00 in Shanghai is 12:00 UTC, as the sale then shows it
    await page.getByLabel('SKU id').fill('FLASH-TEA');
    await page.getByLabel('Title').fill('Tea, flash sale');
    await page.getByLabel('Merchant').fill('shop');
    await page.getByLabel('List price (cents)').fill('900');
    await page.getByLabel('Flash-sale price (cents)').fill('500');
    await page.getByLabel('Units for sale').fill('5');
    await starts.fill('2031-05-01T20:00');
    await page.getByLabel('Ends (your time, Asia/Shanghai)').fill('2031-05-01T22:00');
    await page.getByRole('button', { name: 'Create flash sale' }).click();
    await expect.poll(() => shownText(page.getByRole('region', { name: /FLASH-TEA/ }))).toContain('1 May 2031, 12:00:00 UTC to 1 May 2031, 14:00:00 UTC');
    const sku = await system.request('GET', '/v1/admin/skus/FLASH-TEA', { token: system.token('ops', 'admin') });
    expect(sku.body.flashSale.startsAt).toBe('2031-05-01T12:00:00.000Z');
  });

  /** A tea SKU with this flash sale, made through the api, and its monitor opened on the flash-sales page. */
  async function watchedSale(skuId: string, title: string, flashSale: { priceCents: number; startsAt: string; endsAt: string; perUserLimit: number }) {
    const created = await system.request('POST', '/v1/admin/skus', {
      token: system.token('ops', 'admin'),
      body: { skuId, title, priceCents: 900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-1', stock: 5, deduction: 'placement', flashSale },
    });
    expect(created.status).toBe(201);
    await page.goto(`${base}/console/`);
    await page.getByRole('link', { name: 'Flash sales' }).click();
    await page.getByLabel('SKU to watch').fill(skuId);
    await page.getByRole('button', { name: 'Watch' }).click();
    return page.getByRole('region', { name: new RegExp(skuId) });
  }

  it('postpones a flash sale before it opens in the browser\'s own time, and withdraws it once asked to confirm', async () => {
    const admin = system.token('ops', 'admin');
    const monitor = await watchedSale('FLASH-COCOA', 'Cocoa, flash sale', { priceCents: 500, startsAt: '2031-05-01T12:00:00.000Z', endsAt: '2031-05-01T14:00:00.000Z', perUserLimit: 1 });
    const change = page.getByRole('form', { name: 'Change the sale before it opens' });
    await change.getByLabel('Sale starts (your time, Asia/Shanghai)').fill('2031-05-02T20:00');
    await change.getByLabel('Sale ends (your time, Asia/Shanghai)').fill('2031-05-02T22:00');
    await change.getByLabel('Sale price (cents)').fill('450');
    await change.getByRole('button', { name: 'Change the sale' }).click();
    await expect.poll(() => shownText(monitor)).toContain('2 May 2031, 12:00:00 UTC to 2 May 2031, 14:00:00 UTC');
    expect(await shownText(monitor)).toContain('Flash price $4.50');
    expect((await system.request('GET', '/v1/admin/skus/FLASH-COCOA', { token: admin })).body.flashSale).toMatchObject({ startsAt: '2031-05-02T12:00:00.000Z', priceCents: 450 });

    // dismissed, nothing is sent; accepted, the SKU sells at its list price
    page.once('dialog', (dialog) => void dialog.dismiss());
    await change.getByRole('button', { name: 'Withdraw the sale' }).click();
    expect((await system.request('GET', '/v1/admin/skus/FLASH-COCOA', { token: admin })).body.flashSale).not.toBeNull();
    page.once('dialog', (dialog) => void dialog.accept());
    await change.getByRole('button', { name: 'Withdraw the sale' }).click();
    await expect.poll(() => shownText(monitor)).toContain('No flash sale; list price $9.00');
    expect((await system.request('GET', '/v1/admin/skus/FLASH-COCOA', { token: admin })).body.flashSale).toBeNull();
  });

  it('ends a running sale early at a time in the browser\'s own zone, once asked to confirm', async () => {
    const admin = system.token('ops', 'admin');
    const hour = 3_600_000;
    const running = { priceCents: 500, startsAt: new Date(Date.now() - hour).toISOString(), endsAt: new Date(Date.now() + 3 * hour).toISOString(), perUserLimit: 1 };
    const monitor = await watchedSale('FLASH-MATCHA', 'Matcha, flash sale', running);
    const end = page.getByRole('form', { name: 'End the sale early' });
    // an hour from now, on the minute, as a clock in Shanghai (UTC+8, no summer time) reads it
    const endsAt = new Date(Math.floor((Date.now() + hour) / 60_000) * 60_000);
    await end.getByLabel('Sale ends (your time, Asia/Shanghai)').fill(new Date(endsAt.getTime() + 8 * hour).toISOString().slice(0, 16));
    page.once('dialog', (dialog) => void dialog.dismiss());
    await end.getByRole('button', { name: 'End the sale' }).click();
    expect((await system.request('GET', '/v1/admin/skus/FLASH-MATCHA', { token: admin })).body.flashSale.endsAt).toBe(running.endsAt);
    page.once('dialog', (dialog) => void dialog.accept());
    await end.getByRole('button', { name: 'End the sale' }).click();
    await expect.poll(async () => (await system.request('GET', '/v1/admin/skus/FLASH-MATCHA', { token: admin })).body.flashSale.endsAt).toBe(endsAt.toISOString());
    await expect.poll(() => shownText(monitor)).toContain(`to ${endsAt.toLocaleString('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'medium' })} UTC`);
  });

  it('gives a SKU whose last sale ended an hour ago its next sale, suggested the same hour the next day, in the browser\'s own time', async () => {
    const admin = system.token('ops', 'admin');
    const hour = 3_600_000;
    const lastSale = { priceCents: 500, startsAt: new Date(Date.now() - 2 * hour).toISOString(), endsAt: new Date(Date.now() - hour).toISOString(), perUserLimit: 1 };
    const monitor = await watchedSale('FLASH-OOLONG', 'Oolong, flash sale', lastSale);
    const next = page.getByRole('form', { name: 'Give the SKU its next sale' });
    // suggested at the same hour the next day, as long as the last: a daily sale (Asia/Shanghai is UTC+8 all year)
    const shanghai = (ms: number) => new Date(ms + 8 * hour).toISOString().slice(0, 16);
    expect(await next.getByLabel('Sale starts (your time, Asia/Shanghai)').inputValue()).toBe(shanghai(Date.parse(lastSale.startsAt) + 24 * hour));
    expect(await next.getByLabel('Sale ends (your time, Asia/Shanghai)').inputValue()).toBe(shanghai(Date.parse(lastSale.endsAt) + 24 * hour));
    await next.getByLabel('Sale starts (your time, Asia/Shanghai)').fill('2031-06-01T20:00');
    await next.getByLabel('Sale ends (your time, Asia/Shanghai)').fill('2031-06-01T21:00');
    await next.getByRole('button', { name: 'Set the next sale' }).click();
    await expect.poll(() => shownText(monitor)).toContain('1 Jun 2031, 12:00:00 UTC to 1 Jun 2031, 13:00:00 UTC');
    expect((await system.request('GET', '/v1/admin/skus/FLASH-OOLONG', { token: admin })).body.flashSale).toEqual({ priceCents: 500, startsAt: '2031-06-01T12:00:00.000Z', endsAt: '2031-06-01T13:00:00.000Z', perUserLimit: 1 });
  });

  it("holds the reason for approving a return to the api's 400 characters, and asks first, saying the units and what is paid back", async () => {
    const orderId = await system.checkout('una', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('una'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
    await system.waitForStatus(orderId, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('una'), body: { reason: 'too loud', items: [{ skuId: 'KETTLE', qty: 2 }] } });
    expect(asked.status).toBe(202);

    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('button', { name: /Approve return/ }).waitFor();
    // 450 characters typed: the box keeps the first 400, what the approve route takes
    const box = page.getByLabel('Reason (kept in the history, optional)');
    await box.fill('dented '.repeat(65).slice(0, 450));
    expect((await box.inputValue()).length).toBe(400);

    // said no to, nothing is sent: the return still waits for its review
    expect(await questionDeclined(page, page.getByRole('button', { name: /Approve return/ }))).toBe('Approve the return of 2 units (2 × KETTLE): refund $79.98 once received? This cannot be undone.');
    await page.getByRole('button', { name: 'Refresh' }).click();
    expect(await shownText(page.getByTestId('order-status'))).toBe('RETURN_REQUESTED');
    expect((await system.order(orderId)).status).toBe('RETURN_REQUESTED');

    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: /Approve return/ }).click();
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('RETURNING');
    expect(await page.getByRole('alert').count()).toBe(0);
    expect((await system.order(orderId)).history.at(-1).detail).toMatch(/approved: (dented ){57}d$/);
  });

  it('asks before cancelling an unpaid order, whose units go back on sale, and sends nothing when the operator says no', async () => {
    const orderId = await system.checkout('uri', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await page.goto(`${base}/console/orders/${orderId}`);
    const cancel = page.getByRole('button', { name: /Cancel \(unpaid\)/ });
    await cancel.waitFor();

    expect(await questionDeclined(page, cancel)).toBe('Cancel this unpaid order? The buyer can no longer pay it, and its units go back on sale. This cannot be undone.');
    await page.getByRole('button', { name: 'Refresh' }).click();
    expect(await shownText(page.getByTestId('order-status'))).toBe('PENDING_PAYMENT');
    expect((await system.order(orderId)).status).toBe('PENDING_PAYMENT');

    page.once('dialog', (dialog) => void dialog.accept());
    await cancel.click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Cancel \(unpaid\): the order is now CANCELLED/);
  });

  it("names the cancel of an imported order paid in its channel for what it does: cancelled, not refunded through this shop's payments", async () => {
    const imported = await system.request('POST', '/v1/admin/orders/import', {
      token: system.token('ops', 'admin'),
      body: {
        channel: 'partner',
        orders: [
          {
            externalOrderId: 'ext-vic-1',
            userId: 'vic',
            placedAt: new Date().toISOString(),
            status: 'PAID',
            items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_999 }],
            address: buyerAddress,
          },
        ],
      },
    });
    const orderId: string = imported.body.results[0].orderId;

    await page.goto(`${base}/console/orders/${orderId}`);
    const cancel = page.getByRole('button', { name: /^Cancel/ });
    await cancel.waitFor();
    expect(await shownText(cancel)).toBe('Cancel (paid in its channel: no refund from here) → Cancelled');
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await cancel.click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Cancel \(paid in its channel: no refund from here\): the order is now CANCELLED/);
    expect(asked).toBe('Cancel this order? Its parcel is dropped and nothing is paid back from here: the buyer paid in its channel. This cannot be undone.');
    // nothing was paid back through this shop's payment system: the channel took the money
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items).toEqual([]);
  });

  it('says an imported order was paid in its channel, $77.99 at tmall, in each status it arrives in, not "Not paid." for the payment this shop never took', async () => {
    const statuses = ['PAID', 'SHIPPED', 'DELIVERED', 'COMPLETED', 'CANCELLED'];
    const imported = await system.request('POST', '/v1/admin/orders/import', {
      token: system.token('ops', 'admin'),
      body: {
        channel: 'tmall',
        orders: statuses.map((status) => ({
          externalOrderId: `TM-${status}`,
          userId: 'xia',
          placedAt: new Date().toISOString(),
          status,
          // 2 × 39.00 − 5.00 + 4.99 shipping: 77.99 paid in the channel
          items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 2, unitPriceCents: 3_900, discountCents: 500 }],
          shippingCents: 499,
          address: buyerAddress,
        })),
      },
    });
    expect(imported.body.imported).toBe(5);

    const payment = page.getByRole('region', { name: 'Payment' });
    for (const [i, status] of statuses.entries()) {
      const orderId: string = imported.body.results[i].orderId;
      // this shop's payment system holds no payment for it: the channel took the money
      expect((await system.order(orderId)).payments).toEqual([]);
      await page.goto(`${base}/console/orders/${orderId}`);
      await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe(status);
      await expect
        .poll(() => shownText(payment.locator('p')), { message: status })
        .toBe(`Paid in its sales channel, tmall (its order TM-${status}): $77.99, not through this shop's payment system, which holds no payment for it; any refund is the channel's too.`);
      expect(await shownText(payment)).not.toContain('Not paid');
    }
  });

  it('says an imported order was placed when its channel took it, two days before it was imported, and when it was imported', async () => {
    const placedInChannel = new Date(Date.now() - 2 * 86_400_000);
    placedInChannel.setUTCMilliseconds(0);
    const imported = await system.request('POST', '/v1/admin/orders/import', {
      token: system.token('ops', 'admin'),
      body: {
        channel: 'jd',
        orders: [
          {
            externalOrderId: 'JD-LATE',
            userId: 'yan',
            placedAt: placedInChannel.toISOString(),
            status: 'PAID',
            items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 3_900, discountCents: 0 }],
            shippingCents: 0,
            address: buyerAddress,
          },
        ],
      },
    });
    const orderId: string = imported.body.results[0].orderId;
    const { createdAt } = await system.order(orderId);

    await page.goto(`${base}/console/orders/${orderId}`);
    const placed = page.locator('dt:text-is("Placed") + dd');
    await expect.poll(() => shownText(placed)).toContain(' in jd; imported ');
    const times = await placed.locator('time').evaluateAll((shown) => shown.map((time) => Date.parse(time.getAttribute('datetime')!)));
    expect(times).toEqual([placedInChannel.getTime(), Date.parse(createdAt)]);

    // so does its row in the list
    await page.goto(`${base}/console/?userId=yan`);
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: orderId }) });
    await expect.poll(() => shownText(row.locator('.relation'))).toMatch(/^in jd; imported /);
    const listedTimes = await row.locator('time').evaluateAll((shown) => shown.map((time) => Date.parse(time.getAttribute('datetime')!)));
    expect(listedTimes).toEqual([placedInChannel.getTime(), Date.parse(createdAt)]);
  });

  it("shows a merchant the order's delivery address, as the text it is", async () => {
    const orderId = await system.checkout('wes', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const changed = await system.request('PATCH', `/v1/orders/${orderId}/address`, {
      token: system.token('wes'),
      body: { address: { name: 'Wes <b>Bold</b>', phone: '+49 30 1234567', line1: '<img src=x onerror="document.title=1">7 Mill Lane', city: 'Berlin', postalCode: '10115', country: 'DE' } },
    });
    expect(changed.status).toBe(200);

    const merchant = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    try {
      const shop = await merchant.newPage();
      await serveAndSignIn(shop, system.token('shop', 'merchant'));
      await shop.goto(`${base}/console/orders/${orderId}`);
      await shop.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
      const address = shop.getByTestId('delivery-address');
      await expect.poll(() => address.count()).toBe(1);
      expect(await address.textContent()).toBe('Wes <b>Bold</b>, +49 30 1234567, <img src=x onerror="document.title=1">7 Mill Lane, 10115 Berlin, DE');
      // text, not markup: no element was made of it
      expect(await address.locator('b, img').count()).toBe(0);
    } finally {
      await merchant.close();
    }
  });
  /** Checked out and paid by `buyer`: in fulfilment. */
  async function paidOrder(buyer: string, items: Array<{ skuId: string; qty: number }>): Promise<string> {
    const orderId = await system.checkout(buyer, items);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    return orderId;
  }

  it('asks before paying a whole order back, and sends nothing when the operator says no', async () => {
    const orderId = await paidOrder('abe', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await page.goto(`${base}/console/orders/${orderId}`);
    const cancel = page.getByRole('button', { name: /Cancel with refund/ });
    await cancel.waitFor();

    expect(await questionDeclined(page, cancel)).toBe('Cancel this order and pay the buyer back in full? This cannot be undone.');
    await page.getByRole('button', { name: 'Refresh' }).click();
    expect(await shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
    expect((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items).toEqual([]);

    page.once('dialog', (dialog) => void dialog.accept());
    await cancel.click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Cancel with refund: the order is now (REFUNDING|REFUNDED|CANCELLED)/);
  });

  it("refunds only the units of lines still shown: units typed for a child's line that shipped meanwhile are not sent", async () => {
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const orderId = await paidOrder('bea', [
      { skuId: 'KETTLE', qty: 1 },
      { skuId: 'MUG', qty: 1 },
    ]);
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    const mugChild = (await Promise.all(children.map(async (child) => ((await system.order(child)).items[0].skuId === 'MUG' ? child : null)))).find(Boolean)!;

    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByLabel('Units of KETTLE to refund (of 1 left)').fill('1');
    await page.getByLabel('Units of MUG to refund (of 1 left)').fill('1');
    // the mug's parcel leaves the warehouse meanwhile: its units are returned now, not refunded
    await system.warehouseSim.request('POST', `/__admin/orders/${mugChild}/events`, { body: { event: 'SHIPPED' } });
    await system.waitForStatus(mugChild, 'SHIPPED');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.getByLabel('Units of MUG to refund (of 1 left)').count()).toBe(0);

    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Refund chosen units' }).click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: refund \S+ is PENDING/);
    expect(await page.getByRole('alert').count()).toBe(0);
    const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items;
    expect(refund.items.map((item: { skuId: string; qty: number }) => `${item.skuId} ×${item.qty}`)).toEqual(['KETTLE ×1']);
  });

  it('keeps an operator who signed in again signed in when a request sent with the earlier, since expired, token answers 401', async () => {
    const orderId = await paidOrder('cal', [{ skuId: 'KETTLE', qty: 1 }]);
    const expiresAt = Date.now() + 4_000;
    const shortLived = signToken(system.env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin', exp: Math.floor(expiresAt / 1000) });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').fill(shortLived);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    // the order's actions are read slowly: the answer comes after the first token expired
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const actions = `**/v1/orders/${orderId}/actions**`;
    let held = 0;
    await page.route(actions, async (route) => {
      held++;
      await released;
      await route.continue();
    });
    await page.goto(`${base}/console/orders/${orderId}`);
    await expect.poll(() => held).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').fill(system.token('ops', 'admin'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await sleep(Math.max(0, expiresAt + 1_500 - Date.now()));
    release();
    await page.unroute(actions);
    await sleep(1_000);
    expect(await page.getByLabel('Token').count()).toBe(0);
    expect(await shownText(page.locator('.who'))).toBe('Signed in as admin ops');
  });

  it('clears what an earlier action answered when the operator reads the order again with Refresh', async () => {
    const orderId = await paidOrder('dot', [{ skuId: 'KETTLE', qty: 2 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByLabel('Units of KETTLE to refund (of 2 left)').fill('1');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Refund chosen units' }).click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: refund \S+ is PENDING/);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.getByRole('status').count()).toBe(0);
  });

  it("forgets an admin's search on signing out: the merchant who signs in next goes back to a list without it", async () => {
    const orderId = await paidOrder('eve', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    await page.goto(`${base}/console/?userId=eve`);
    await page.getByRole('link', { name: orderId }).click();
    const back = page.getByRole('link', { name: '← Orders' });
    await back.waitFor();
    expect(await back.getAttribute('href')).toBe('/console/?userId=eve');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').fill(system.token('shop', 'merchant'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    // signed in on the order's page, which the address still names
    await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
    expect(await back.getAttribute('href')).toBe('/console/');
  });
});
