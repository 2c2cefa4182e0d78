import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { OrderRepository } from '@orders/persistence';
import { buyerAddress, waitFor } from '@orders/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

const CONSOLE_DIR = fileURLToPath(new URL('..', import.meta.url));
const SCREENSHOTS = fileURLToPath(new URL('../test-results/', import.meta.url));
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

/**
 * The console in headless Chromium against the whole system in this process (api serving
 * the console's fresh Vite build, worker, both simulators), as a merchant and an operator
 * use it. Each page is saved to test-results/ for a person to look at.
 */
describe('the web console', () => {
  let system: OrderSystem;
  let browser: Browser;
  let page: Page;
  let base: string;
  let importedOrderId: string;
  const routes = new Set<string>();

  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });

  async function signIn(token: string) {
    await page.goto(`${base}/console/`);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Orders', level: 1 }).isVisible()).toBe(true);
  }

  async function signOut() {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
  }

  /** Paid, then delivered by the warehouse's callbacks, like any parcel. */
  async function deliveredOrder(buyer: string): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
    await system.waitForStatus(orderId, 'DELIVERED');
    return orderId;
  }

  beforeAll(async () => {
    // the same build npm run build makes; a fresh clone's npm test has run tsc -b only
    await build({ root: CONSOLE_DIR, configFile: `${CONSOLE_DIR}vite.config.ts`, logLevel: 'warn' });
    await mkdir(SCREENSHOTS, { recursive: true });
    system = await startOrderSystem('console', { WAREHOUSE_SIM_STEP_MS: '0' });
    base = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}`;
    for (const path of Object.keys((await system.request('GET', '/docs/json')).body.paths)) routes.add(path);
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    const imported = await system.request('POST', '/v1/admin/orders/import', {
      token: system.token('ops', 'admin'),
      body: {
        channel: 'partner',
        orders: [
          {
            externalOrderId: 'ext-ivy-1',
            userId: 'ivy',
            placedAt: new Date().toISOString(),
            status: 'PAID',
            items: [{ skuId: 'KETTLE', title: 'Kettle', merchantId: 'shop', warehouseId: 'wh-east', qty: 2, unitPriceCents: 3_999, discountCents: 500 }],
            address: buyerAddress,
          },
        ],
      },
    });
    importedOrderId = imported.body.results[0].orderId;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  });
  afterAll(async () => {
    await browser?.close();
    await system?.close();
  });

  it('signs an operator in, finds an order by its buyer, opens it and shows its lines and timeline', async () => {
    await page.goto(`${base}/console/`);
    await shot('01-sign-in');
    await signIn(system.token('ops', 'admin'));
    await page.getByLabel('Buyer').fill('ivy');
    await page.getByLabel('Buyer').press('Enter');
    const row = page.getByRole('row').filter({ hasText: importedOrderId });
    await row.waitFor();
    expect(await page.getByRole('table').getByRole('row').count()).toBe(2);
    await expect.poll(() => row.textContent()).toContain('To fulfil');
    await shot('02-orders-by-buyer');

    await row.getByRole('link', { name: importedOrderId }).click();
    await page.getByRole('heading', { name: `Order ${importedOrderId}` }).waitFor();
    const timeline = page.getByRole('list', { name: 'Timeline' });
    await expect.poll(() => timeline.textContent()).toContain('persist by system: ACCEPTED → PAID');
    expect(await page.getByRole('row').filter({ hasText: 'Kettle' }).textContent()).toContain('$5.00');
    // an operator may not ship an imported order: its table gives that to the merchant and the warehouse
    expect(await page.getByRole('button', { name: /Mark shipped/ }).count()).toBe(0);
    await shot('03-order-detail');
    await signOut();
  });

  it("ships the order as its merchant through the action the state table allows, and shows a refused action's problem", async () => {
    await signIn(system.token('shop', 'merchant'));
    // a deep link: the api answers index.html and the console routes itself
    await page.goto(`${base}/console/orders/${importedOrderId}`);
    await page.getByRole('button', { name: /Mark shipped/ }).click();
    await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('SHIPPED');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('now SHIPPED (Shipped)');
    await expect.poll(() => page.getByRole('list', { name: 'Timeline' }).textContent()).toContain('ship by merchant: PAID → SHIPPED');
    await shot('04-order-shipped');

    // the warehouse delivers meanwhile; the console still offers what was allowed when it loaded
    const delivered = await system.request('POST', `/v1/orders/${importedOrderId}/actions/deliver`, { token: system.token('shop', 'merchant') });
    expect(delivered.body.status).toBe('DELIVERED');
    await page.getByRole('button', { name: /Mark delivered/ }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/deliver/);
    await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('DELIVERED');
    await shot('05-refused-action');
  });

  it('lists a return waiting for review in after-sales, and the merchant refuses it', async () => {
    const orderId = await deliveredOrder('cy');
    if (routes.has('/v1/orders/{orderId}/returns')) {
      const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('cy'), body: { reason: 'too loud', items: [{ skuId: 'KETTLE', qty: 1 }] } });
      expect(asked.status).toBe(202);
    } else {
      // no returns route yet: the buyer's request goes through the engine directly
      await new OrderRepository(system.env.db).applyTransition({ orderId, action: 'request_return', actor: 'buyer', at: new Date() });
    }
    await system.waitForStatus(orderId, 'RETURN_REQUESTED');

    await page.getByRole('link', { name: 'After-sales' }).click();
    const review = page.getByRole('table', { name: /Returns to review/ });
    await review.getByRole('link', { name: orderId }).waitFor();
    await shot('06-after-sales');
    await review.getByRole('link', { name: orderId }).click();
    await page.getByLabel('Reason (kept in the history, optional)').fill('used, outside the return terms');
    await page.getByRole('button', { name: /Refuse return/ }).click();
    await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('DELIVERED');
    await expect.poll(() => page.getByRole('list', { name: 'Timeline' }).textContent()).toContain('refuse_return by merchant: RETURN_REQUESTED → DELIVERED');
    await shot('07-return-refused');
  });

  it('creates a flash sale and shows its stock and queues move while buyers check out', async () => {
    await page.getByRole('link', { name: 'Flash sales' }).click();
    await page.getByLabel('SKU id').fill('FLASH-KETTLE');
    await page.getByLabel('Title').fill('Kettle, flash sale');
    await page.getByLabel('Warehouse').fill('wh-east');
    await page.getByLabel('List price (cents)').fill('3999');
    await page.getByLabel('Flash-sale price (cents)').fill('1999');
    await page.getByLabel('Units for sale').fill('30');
    await page.getByRole('button', { name: 'Create flash sale' }).click();
    await expect.poll(() => page.getByTestId('stock-available').textContent()).toBe('30');
    expect(await page.getByRole('table', { name: 'Queues behind the sale' }).getByRole('row', { name: /orders/ }).count()).toBe(1);
    await shot('09-flash-sale-opened');

    const buyers = Array.from({ length: 12 }, (_, i) => `fan-${i}`);
    const orderIds = await Promise.all(buyers.map((buyer) => system.checkout(buyer, [{ skuId: 'FLASH-KETTLE', qty: 1 }])));
    await expect.poll(() => page.getByTestId('stock-reserved').textContent(), { timeout: 10_000 }).toBe('12');
    expect(await page.getByTestId('stock-available').textContent()).toBe('18');
    await shot('10-flash-sale-reserved');

    for (const [i, orderId] of orderIds.slice(0, 4).entries()) {
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyers[i]!), body: { method: 'card' } });
    }
    await expect.poll(() => page.getByTestId('stock-sold').textContent(), { timeout: 10_000 }).toBe('4');
    expect(await page.getByTestId('stock-reserved').textContent()).toBe('8');
    await shot('11-flash-sale-sold');
  });

  it("refunds some units of a paid order as its merchant: the refund pays back those units' share, and only the units left can be refunded again", async () => {
    const orderId = await system.checkout('eli', [{ skuId: 'KETTLE', qty: 3 }], 'eli-three-kettles');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('eli'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    const paid = await system.order(orderId);

    await page.goto(`${base}/console/orders/${orderId}`);
    const refundButton = page.getByRole('button', { name: 'Refund chosen units' });
    await refundButton.waitFor();
    // nothing chosen, nothing to send
    expect(await refundButton.isDisabled()).toBe(true);
    await page.getByLabel('Units of KETTLE to refund (of 3 left)').fill('2');
    await page.getByLabel('Reason (kept in the history, optional)').fill('two arrived dented');
    await refundButton.click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Refund of 2 units: the order is now');
    await page.getByLabel('Units of KETTLE to refund (of 1 left)').waitFor();
    // the line's cells: title, qty, units refunded, …
    expect(await page.getByRole('row').filter({ hasText: 'KETTLE' }).first().getByRole('cell').nth(2).textContent()).toBe('2');

    // the payment system pays back 2 of the line's 3 units; the order itself goes on to the warehouse
    await system.waitForRefund(orderId, 'SUCCEEDED', 10_000);
    const refunded = await system.order(orderId);
    expect(refunded.amounts.refundedCents).toBe((paid.items[0].payableCents * 2) / 3);
    expect(refunded.items[0].refundedQty).toBe(2);
    expect(refunded.status).toBe('IN_FULFILLMENT');
    await shot('12-partial-refund');

    // more than is left: the api's refusal, shown as it is
    await page.getByLabel('Units of KETTLE to refund (of 1 left)').fill('2');
    await refundButton.click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/refund/i);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(2);
  });

  it('lets an operator cancel a paid order with a refund through the cancel route of the reverse flows, once the api has it', async (context) => {
    if (!routes.has('/v1/orders/{orderId}/cancel')) context.skip('POST /v1/orders/:orderId/cancel is not in /docs/json yet');
    const orderId = await system.checkout('dee', [{ skuId: 'KETTLE', qty: 1 }], 'dee-cancel');
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('dee'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the cancel route takes buyers and admins (a merchant's click shows its 403 detail)
    await signOut();
    await signIn(system.token('ops', 'admin'));
    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('button', { name: /Cancel with refund/ }).click();
    await waitFor(async () => ['REFUNDING', 'REFUNDED'].includes((await system.order(orderId)).status), { what: 'the refund', timeoutMs: 10_000 });
    await shot('13-cancelled-with-refund');
  });
});
