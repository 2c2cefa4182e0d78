import { rm } from 'node:fs/promises';
import { waitFor } from '@orders/testing';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { buildConsole, launchChromium, savePage, serveConsole, signIn } from './support/browser.js';

/**
 * The admin's orders list holding a split order and its children, in headless Chromium
 * against the whole system. The console is built into a folder of this file's own and served
 * to the browser from there (console.test.ts builds apps/console/dist, which the api serves,
 * at the same time), its API calls going to the api as from the api's own /console.
 */
describe("the orders list's split orders", () => {
  let system: OrderSystem;
  let browser: Browser;
  let page: Page;
  let base: string;
  let built: string;

  const shownText = async (elements: Locator): Promise<string> => (await elements.allTextContents()).join('\n');

  beforeAll(async () => {
    built = await buildConsole('console-split-orders');
    system = await startOrderSystem('console_split_orders', { WAREHOUSE_SIM_STEP_MS: '0' });
    base = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}`;
    // one shop, two warehouses: an order of both splits into two children
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'TEA', priceCents: 1_250, merchantId: 'shop', channel: 'self', warehouseId: 'wh-west', stock: 20, deduction: 'placement' });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    await serveConsole(page, base, built);
  });
  afterAll(async () => {
    await browser?.close();
    await system?.close();
    if (built) await rm(built, { recursive: true, force: true });
  });

  it('marks a split order "split into 2" and each child "part of" it, and says their payables are not to be added up together', async () => {
    const orderId = await system.checkout('dee', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'TEA', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('dee'), body: { method: 'card' } });
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    // an order of the same buyer never split: it shows no relation
    const single = await system.checkout('dee', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(single, 'PENDING_PAYMENT');

    await signIn(page, base, system.token('ops', 'admin'));
    await page.getByLabel('Buyer').fill('dee');
    await page.getByLabel('Buyer').press('Enter');
    // the row an order heads (a child's row names its split order too)
    const row = (id: string) => page.getByRole('table').getByRole('row').filter({ has: page.locator('th[scope="row"] > a:first-child', { hasText: id }) });
    await expect.poll(() => page.getByRole('table').getByRole('row').count(), { timeout: 10_000 }).toBe(5);

    const parentRow = await shownText(row(orderId).getByRole('rowheader'));
    expect(parentRow).toBe(`${orderId}split into 2 child orders`);
    expect(await shownText(row(orderId).getByRole('cell').nth(6))).toMatch(/^\$\d[\d,]*\.\d\dits child orders' added up$/);
    for (const child of children) {
      expect(await shownText(row(child).getByRole('rowheader'))).toBe(`${child}part of ${orderId}`);
      expect(await shownText(row(child).getByRole('cell').nth(6))).toMatch(/also counted in its split order's$/);
    }
    expect(await shownText(row(single).getByRole('rowheader'))).toBe(single);
    expect(await shownText(page.locator('#split-payables'))).toBe("A split order's payable is its child orders' payables added up: count either the split order or its children, not both.");
    await savePage(page, '02b-split-orders-in-the-list');

    // a child's "part of" link opens the split order
    await row(children[0]!).getByRole('rowheader').getByRole('link', { name: orderId }).click();
    await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();
  });
});
