import { fileURLToPath } from 'node:url';
import { OrderRepository } from '@orders/persistence';
import { addDeadLetter } from '@orders/queues';
import { buyerAddress, waitFor } from '@orders/testing';
import { sql } from 'kysely';
import type { Browser, Locator, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { formatTime } from '../src/api.js';
import { launchChromium, savePage } from './support/browser.js';

const CONSOLE_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * The console in headless Chromium against the whole system in this process (api serving
 * the console's fresh Vite build, worker, both simulators), as a merchant and an operator
 * use it. With CONSOLE_SCREENSHOTS=1 each page is saved to test-results/ for a person to look at.
 */
describe('the web console', () => {
  let system: OrderSystem;
  let browser: Browser;
  let page: Page;
  let base: string;
  let importedOrderId: string;
  const routes = new Set<string>();
  /** What the actions that ask first asked, in order. */
  const asked: string[] = [];

  const shot = (name: string): Promise<void> => savePage(page, name);
  /** What the elements show now, without waiting for one to appear (for expect.poll). */
  const shownText = async (elements: Locator): Promise<string> => (await elements.allTextContents()).join('\n');

  async function signIn(token: string) {
    await page.goto(`${base}/console/`);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Orders', level: 1 }).isVisible()).toBe(true);
  }

  /** `look` in a tab of its own, signed in with `token`: the page signed in on the other stays so. */
  async function inTabOfItsOwn(token: string, look: (tab: Page) => Promise<void>): Promise<void> {
    const tab = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    try {
      await tab.goto(`${base}/console/`);
      await tab.getByLabel('Token').fill(token);
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.getByRole('heading', { name: 'Orders', level: 1 }).waitFor();
      await look(tab);
    } finally {
      await tab.close();
    }
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
    // a shop in pounds: the console shows amounts in the shop's currency (SHOP_CURRENCY), as the api's page names it
    system = await startOrderSystem('console', { WAREHOUSE_SIM_STEP_MS: '0', SHOP_CURRENCY: 'GBP' });
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
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    // the operator says yes to the actions that ask first (console-audit.test.ts says no to one)
    page.on('dialog', (dialog) => (asked.push(dialog.message()), void dialog.accept()));
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
    expect(await page.getByRole('row').filter({ hasText: 'Kettle' }).textContent()).toContain('£5.00');
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
    // the operator is asked first: a parcel marked shipped cannot be called back
    await expect.poll(() => asked.at(-1)).toBe('Mark this order shipped? It can no longer be cancelled: its parcel is on its way. This cannot be undone.');
    await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('SHIPPED');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('now SHIPPED (Shipped)');
    await expect.poll(() => page.getByRole('list', { name: 'Timeline' }).textContent()).toContain('ship by merchant: PAID → SHIPPED');
    await shot('04-order-shipped');

    // the warehouse delivers meanwhile; the console still offers what was allowed when it loaded
    const delivered = await system.request('POST', `/v1/orders/${importedOrderId}/actions/deliver`, { token: system.token('shop', 'merchant') });
    expect(delivered.body.status).toBe('DELIVERED');
    await page.getByRole('button', { name: /Mark delivered/ }).click();
    await expect.poll(() => asked.at(-1)).toMatch(/^Mark this order delivered\?/);
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
    // the shop reads by when it must decide: the system approves a return left unreviewed
    const underReview = (await system.order(orderId)).nextTimer;
    expect(await review.getByRole('row').filter({ hasText: orderId }).textContent()).toContain(`Return approved for the shop: ${formatTime(underReview.dueAt)}`);
    await shot('06-after-sales');
    await review.getByRole('link', { name: orderId }).click();
    await page.getByLabel('Reason (kept in the history, optional)').fill('used, outside the return terms');
    await page.getByRole('button', { name: /Refuse return/ }).click();
    await expect.poll(() => page.getByTestId('order-status').textContent()).toBe('DELIVERED');
    await expect.poll(() => page.getByRole('list', { name: 'Timeline' }).textContent()).toContain('refuse_return by merchant: RETURN_REQUESTED → DELIVERED');
    // delivered again: the operator reads when it completes by itself, as the api says
    const { nextTimer } = await system.order(orderId);
    expect(nextTimer.action).toBe('complete');
    await expect.poll(() => page.getByTestId('next-timer').textContent()).toBe(`Completes (the after-sales window closes, once no refund is owed): ${formatTime(nextTimer.dueAt)}, unless someone acts first`);
    // the reason given is kept in the step's detail, after the return's id
    expect(await page.getByRole('list', { name: 'Timeline' }).getByRole('listitem').last().textContent()).toMatch(/refused: used, outside the return terms$/);
    await shot('07-return-refused');
  });

  it("shows the merchant only its own lines and their amounts of an order holding another merchant's too, and only its own child's refunds", async () => {
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const orderId = await system.checkout('mo', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 2 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    // still signed in as the shop
    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('row').filter({ hasText: 'KETTLE' }).waitFor();
    expect(await page.getByRole('row').filter({ hasText: 'MUG' }).count()).toBe(0);
    // the kettle's £39.99, not the order's £57.97
    expect(await page.locator('dl.amounts').textContent()).toBe('Subtotal£39.99Discounts−£0.00Shipping£0.00Payable£39.99Refunded£0.00');
    await shot('07b-merchant-own-lines');

    // paid and split, then the buyer refunds the kettle and one mug: the shop's refunds and returns are its kettle's alone
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('mo'), body: { method: 'card' } });
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    // the shop's own child is paid, by its parent's payment: the child has none of its own
    const kettleChild = (await Promise.all(children.map((child) => system.order(child)))).find((child) => child.items[0].skuId === 'KETTLE');
    const parentPayment = (await system.order(orderId)).payment;
    await page.goto(`${base}/console/orders/${kettleChild.orderId}`);
    const payment = page.getByRole('region', { name: 'Payment' });
    await expect.poll(() => shownText(payment)).toContain(`Paid with order ${orderId}`);
    await expect.poll(() => shownText(payment)).toContain(parentPayment.transactionId);
    expect(await shownText(payment)).not.toContain('Not paid');
    await shot('07c-merchant-paid-child');
    // a parent it may not read: the child still names the order that paid it
    await page.route(`**/v1/orders/${orderId}`, (route) => route.fulfill({ status: 404, contentType: 'application/problem+json', body: JSON.stringify({ status: 404, code: 'NOT_FOUND', detail: 'order not found' }) }));
    await page.reload();
    await expect.poll(() => shownText(payment)).toContain(`Paid with order ${orderId}`);
    expect(await shownText(payment)).not.toContain('Not paid');
    await page.unroute(`**/v1/orders/${orderId}`);
    await payment.getByRole('link', { name: orderId }).click();
    await page.getByRole('heading', { name: `Order ${orderId}` }).waitFor();

    const refund = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('mo'), body: { reason: 'changed my mind', items: [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }] } });
    expect(refund.body.refunds).toHaveLength(2);
    await page.reload();
    const afterSales = page.getByRole('region', { name: 'Refunds and returns' });
    await afterSales.getByRole('row').filter({ hasText: 'KETTLE' }).waitFor();
    // a header and the kettle's refund
    expect(await afterSales.getByRole('row').count()).toBe(2);
    expect(await page.locator('main').textContent()).not.toContain('MUG');
    await shot('07d-merchant-own-refunds');
  });

  it('shows an order still in the queue as placed when the intake accepted it and still being recorded, the system moving it on next', async () => {
    const orders = system.workers.deps.queues.orders;
    const placed = page.locator('dt:text-is("Placed") + dd');
    const actions = page.getByRole('region', { name: 'Actions' });
    // a backlog: the intake accepts the order, no worker writes it yet
    await orders.pause();
    try {
      const orderId = await system.checkout('quin', [{ skuId: 'KETTLE', qty: 1 }]);
      const queued = await system.order(orderId);
      expect(queued.status).toBe('ACCEPTED');
      await page.goto(`${base}/console/orders/${orderId}`);
      await expect.poll(() => shownText(placed), { timeout: 10_000 }).toMatch(/ UTC: accepted, still being recorded$/);
      // the checkout's time, as the api gives it for an order it answers from the queue
      expect(await placed.locator('time').getAttribute('datetime')).toBe(queued.history[0].at);
      const said = await shownText(actions);
      expect(said).toContain('The system records it next');
      expect(said).not.toMatch(/belongs to the buyer/);
      await shot('07e-queued-order');
      // the buyer's support call: an operator finds it by the buyer, as the intake accepted it
      await inTabOfItsOwn(system.token('ops', 'admin'), async (tab) => {
        await tab.getByLabel('Buyer').fill('quin');
        await tab.getByLabel('Buyer').press('Enter');
        const row = tab.getByRole('row').filter({ hasText: orderId });
        await row.waitFor();
        expect(await row.getByRole('cell').allTextContents()).toEqual(expect.arrayContaining(['ACCEPTED', 'quin', 'KETTLE ×1', '–', formatTime(queued.history[0].at)]));
        // the buyer's orders still in the queue alone; no other list holds them, so a search naming no buyer is refused
        await tab.getByLabel('Status').selectOption('ACCEPTED');
        await tab.getByRole('button', { name: 'Search' }).click();
        await expect.poll(async () => tab.getByRole('table').getByRole('rowheader').allTextContents()).toEqual([orderId]);
        await tab.getByLabel('Buyer').fill('');
        await tab.getByRole('button', { name: 'Search' }).click();
        await expect.poll(() => shownText(tab.getByRole('alert'))).toBe('Not searched: orders still in the queue (ACCEPTED) are listed by their buyer: name one.');
      });

      await orders.resume();
      const written = await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => shownText(page.getByTestId('order-status')), { timeout: 10_000 }).toBe('PENDING_PAYMENT');
      expect(await shownText(placed)).not.toContain('being recorded');
      expect(await placed.locator('time').getAttribute('datetime')).toBe(written.createdAt);
      expect(await shownText(actions)).toMatch(/The buyer pays next, by .+ UTC/);
    } finally {
      await orders.resume();
    }
  });

  it("shows a merchant whose part of a split order has shipped the order as its own part stands, not as another merchant's holds it, and that its own child moves on next", async () => {
    const orderId = await system.checkout('vic', [{ skuId: 'KETTLE', qty: 1 }, { skuId: 'MUG', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('vic'), body: { method: 'card' } });
    const children = (await waitFor(async () => (await system.order(orderId)).subOrders.length === 2 && (await system.order(orderId)).subOrders, { what: 'the split' })) as string[];
    for (const child of children) await system.waitForStatus(child, 'IN_FULFILLMENT');
    const childOf = async (skuId: string) => (await Promise.all(children.map((child) => system.order(child)))).find((child) => child.items[0].skuId === skuId).orderId as string;
    const [kettleChild, mugChild] = [await childOf('KETTLE'), await childOf('MUG')];
    // the potter's parcel leaves, the shop's does not: the order stays IN_FULFILLMENT, held by the shop's part
    await system.warehouseSim.request('POST', `/__admin/orders/${mugChild}/events`, { body: { event: 'SHIPPED' } });
    await system.waitForStatus(mugChild, 'SHIPPED');
    expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');

    // the potter, in a tab of its own (the shop stays signed in on the other)
    await inTabOfItsOwn(system.token('potter', 'merchant'), async (potterPage) => {
      await potterPage.goto(`${base}/console/orders/${orderId}`);
      const actions = potterPage.getByRole('region', { name: 'Actions' });
      // the shop's kettle, still in fulfilment, is not the potter's to see: the order reads as its mug, shipped
      await expect.poll(() => shownText(actions), { timeout: 10_000 }).toContain(`it moves on with your child order ${mugChild} (SHIPPED)`);
      expect(await shownText(potterPage.getByTestId('order-status'))).toBe('SHIPPED');
      expect(await shownText(actions)).not.toContain('IN_FULFILLMENT');
      expect(await shownText(potterPage.getByRole('region', { name: 'Child orders after the split' }))).toContain(`${mugChild}: SHIPPED (Shipped)`);
      await savePage(potterPage, '07f-split-seen-by-its-merchant');
    });

    // an operator may refund the kettle still at its warehouse, not the mug shipped (the api would refuse the request whole)
    await inTabOfItsOwn(system.token('ops', 'admin'), async (operatorPage) => {
      await operatorPage.goto(`${base}/console/orders/${orderId}`);
      await operatorPage.getByLabel('Units of KETTLE to refund (of 1 left)').waitFor();
      expect(await operatorPage.getByLabel(/^Units of MUG/).count()).toBe(0);
    });

    // the shop, whose child holds the order: that child's warehouse ships next
    await page.goto(`${base}/console/orders/${orderId}`);
    const actions = page.getByRole('region', { name: 'Actions' });
    await expect.poll(() => shownText(actions), { timeout: 10_000 }).toContain(`it moves on with your child order ${kettleChild} (IN_FULFILLMENT). Warehouse wh-east picks, packs and ships it next.`);
    expect(await shownText(actions)).not.toMatch(/buyer/);
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
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^Refund of 2 units: refund \S+ is PENDING; the order is now/);
    await page.getByLabel('Units of KETTLE to refund (of 1 left)').waitFor();
    // the line's cells: title, qty, units refunded, …
    expect(await page.getByRole('row').filter({ hasText: 'KETTLE' }).first().getByRole('cell').nth(2).textContent()).toBe('2');

    // the payment system pays back 2 of the line's 3 units; the order itself goes on to the warehouse
    await system.waitForRefund(orderId, 'SUCCEEDED', 10_000);
    const refunded = await system.order(orderId);
    expect(refunded.amounts.refundedCents).toBe((paid.items[0].payableCents * 2) / 3);
    expect(refunded.items[0].refundedQty).toBe(2);
    expect(refunded.status).toBe('IN_FULFILLMENT');
    // the refund in the shop's words
    const refundRow = page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: 'two arrived dented' });
    const refundShown = await shownText(refundRow);
    expect(refundShown).toContain('KETTLE ×2');
    expect(refundShown).toContain('£79.98');
    expect(refundShown).not.toMatch(/[{}[\]]|amountCents/);
    // read again by the page until the payment system confirmed it; its cells: kind, order, status, …
    await expect.poll(() => shownText(refundRow.getByRole('cell').nth(2)), { timeout: 10_000 }).toBe('SUCCEEDED');
    expect(await shownText(refundRow)).toContain(`payment ${paid.payment.paymentId}: £79.98, SUCCEEDED`);
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
    // a slow payment system: the order is REFUNDING when the page reads it after the click
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 1_000 } });
    try {
      await page.getByRole('button', { name: /Cancel with refund/ }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Cancel with refund: the order is now REFUNDING/);
      // the page reads the order again by itself until the money is back
      await expect.poll(() => shownText(page.getByTestId('order-status')), { timeout: 10_000 }).toBe('REFUNDED');
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { latencyMs: 0 } });
    }
    await shot('13-cancelled-with-refund');
  });

  it('shows a presale whose deposit alone is paid as such (the deposit paid, the balance due by its deadline), and its balance paid once read again on Refresh', async () => {
    await system.createSku({ skuId: 'NEXT-KETTLE', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'presale' });
    const orderId = await system.checkout('ida', [{ skuId: 'NEXT-KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ida'), body: { method: 'card' } });
    const depositPaid = await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    await page.goto(`${base}/console/orders/${orderId}`);
    const payment = page.getByRole('region', { name: 'Payment' });
    const deposit = payment.getByRole('row').filter({ hasText: 'Deposit' });
    await deposit.waitFor();
    // the default 20% of £100.00
    expect(await deposit.getByRole('cell').allTextContents()).toEqual(['Deposit', '£20.00', 'SUCCEEDED', depositPaid.payments[0].transactionId, expect.stringContaining('UTC')]);
    expect(await payment.getByRole('row').count()).toBe(2);
    expect(await shownText(payment.locator('dl'))).toMatch(/Balance due£80\.00 by /);
    expect(await payment.locator('time').getAttribute('datetime')).toBe(depositPaid.balanceDeadline);
    await shot('12b-presale-deposit-paid');

    // the buyer pays the balance meanwhile: the page shows it once read again on Refresh
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ida'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(await shownText(page.getByTestId('order-status'))).toBe('DEPOSIT_PAID');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
    expect(await payment.getByRole('row').filter({ hasText: 'Balance' }).getByRole('cell').nth(1).textContent()).toBe('£80.00');
    expect(await shownText(payment)).not.toContain('Balance due');
  });

  /** Checked out and paid: in fulfilment, where refunds and a new address are still allowed. */
  async function paidOrder(buyer: string, qty: number): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  }

  /** The page sends a refund of one of the `left` kettles, which the api opens, and its answer never reaches the browser. */
  async function refundOfOneWithAnswerLost(orderId: string, left: number) {
    const refunds = `**/v1/orders/${orderId}/refunds`;
    await page.route(refunds, async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      await route.fetch();
      await route.abort('connectionreset');
    });
    await page.getByLabel(`Units of KETTLE to refund (of ${left} left)`).fill('1');
    await page.getByRole('button', { name: 'Refund chosen units' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('cannot be reached');
    await page.unroute(refunds);
  }

  it('refunds 1 of 4 kettles, then 1 more with the same default reason as a second refund, and answers a resent submission whose answer was lost, sent after a reload of the page, with the refund it opened', async () => {
    const orderId = await paidOrder('finn', 4);
    await page.goto(`${base}/console/orders/${orderId}`);
    const refundButton = page.getByRole('button', { name: 'Refund chosen units' });
    const refundIds: string[] = [];
    for (const left of [4, 3]) {
      await page.getByLabel(`Units of KETTLE to refund (of ${left} left)`).fill('1');
      await refundButton.click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: refund \S+ is PENDING; the order is now IN_FULFILLMENT/);
      refundIds.push(/refund (\S+) is/.exec((await page.getByRole('status').textContent())!)![1]!);
    }
    expect(new Set(refundIds).size).toBe(2);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(2);

    // the api opens the third refund, but its answer never reaches the browser
    await refundOfOneWithAnswerLost(orderId, 2);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(3);
    // the operator reloads the page: what was typed is still there, and so is the key it went under
    await page.reload();
    const kept = page.getByLabel('Units of KETTLE to refund (of 1 left)');
    await kept.waitFor();
    expect(await kept.inputValue()).toBe('1');
    // sent again as it was: the same key, so the same refund, and the console says nothing new happened
    await refundButton.click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: nothing new was refunded: refund \S+ \(\w+\) was opened by this same request before/);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(3);
    await shot('14-second-refund-and-resent-refund');
  });

  it('sends a refund edited after its answer was lost under the same key: told it may have gone through, nothing refunded twice, and the next one sent is a new refund', async () => {
    const orderId = await paidOrder('hugo', 3);
    await page.goto(`${base}/console/orders/${orderId}`);
    const refundButton = page.getByRole('button', { name: 'Refund chosen units' });
    // the api opens the refund of one kettle, but its answer never reaches the browser
    await refundOfOneWithAnswerLost(orderId, 3);
    // the operator, not seeing it went through, asks for two instead: nothing more is refunded, and the page says why
    await page.getByLabel('Units of KETTLE to refund (of 2 left)').fill('2');
    await refundButton.click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('may have refunded them: nothing was sent now');
    expect((await system.order(orderId)).items[0].refundedQty).toBe(1);
    // having read the refunds, the operator sends the rest: a new refund
    await page.getByLabel('Units of KETTLE to refund (of 2 left)').fill('2');
    await refundButton.click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 2 units: refund \S+ is PENDING/);
    expect((await system.order(orderId)).items[0].refundedQty).toBe(3);
  });

  it('keeps what an operator typed on an order for them alone: another operator signed in on the tab sees none of it, and the first finds it again', async () => {
    const orderId = await paidOrder('gwen', 1);
    const reason = page.getByLabel('Reason (kept in the history, optional)');
    await page.goto(`${base}/console/orders/${orderId}`);
    await reason.fill('the buyer called: kettle arrived cracked');
    await signOut();
    await signIn(system.token('ops-night', 'admin'));
    await page.goto(`${base}/console/orders/${orderId}`);
    await reason.waitFor();
    expect(await reason.inputValue()).toBe('');
    await signOut();
    await signIn(system.token('ops', 'admin'));
    await page.goto(`${base}/console/orders/${orderId}`);
    await reason.waitFor();
    expect(await reason.inputValue()).toBe('the buyer called: kettle arrived cracked');
  });

  it('tells the operator that a refund the payment system declined is still owed, rather than show it as money on its way, records it paid back by hand, and asks the payment system again for another', async () => {
    const orderId = await paidOrder('hal', 2);
    const { payment } = await system.order(orderId);
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
    try {
      await page.goto(`${base}/console/orders/${orderId}`);
      await page.getByLabel('Units of KETTLE to refund (of 2 left)').fill('1');
      await page.getByRole('button', { name: 'Refund chosen units' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: refund \S+ is PENDING/);
      const refundId = /refund (\S+) is/.exec((await page.getByRole('status').textContent())!)![1]!;
      await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items[0]?.parts[0]?.status === 'FAILED', { what: 'the refund declined' });
      await page.getByRole('button', { name: 'Refresh' }).click();
      const owed = page.getByRole('region', { name: 'Refunds and returns' }).getByRole('alert');
      await expect.poll(() => shownText(owed)).toContain('still owed to the buyer');
      expect(await shownText(owed)).toContain(`£39.99 of refund ${refundId} to payment ${payment.paymentId}`);
      expect(await shownText(page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: refundId }))).toContain('FAILED: declined, still owed');
      // the order's amounts count the refund from its opening: they say that none of it reached the buyer
      expect(await page.locator('dl.amounts').textContent()).toContain('Refunded£39.99 (of which £0.00 paid back so far)');
      // after-sales lists the orders owing such a refund, for the operator who did not open this one
      await page.getByRole('link', { name: 'After-sales' }).click();
      const declinedList = page.getByRole('region', { name: 'Refunds the payment system declined (still owed)' });
      await declinedList.getByRole('link', { name: orderId }).click();

      // the shop paid the buyer back by bank transfer: the operator says so, naming it
      await page.getByLabel(`How refund ${refundId} was paid back (a transfer's reference)`).fill('SEPA-2026-12-04-0042');
      await page.getByRole('button', { name: 'Record as paid back by hand' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(new RegExp(`^Refund settled by hand: refund ${refundId} is SUCCEEDED`));
      await expect.poll(() => owed.count()).toBe(0);
      expect(await shownText(page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: refundId }))).toContain('paid back by hand (SEPA-2026-12-04-0042)');
      const [refund] = (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items;
      expect([refund.status, refund.parts.map((part: { status: string }) => part.status)]).toEqual(['SUCCEEDED', ['SETTLED_BY_HAND']]);
      await expect.poll(async () => page.locator('dl.amounts').textContent()).toMatch(/Refunded£39\.99$/);
      // the payment system pays it back after all: the row says the buyer was paid twice, for the operator to settle
      const [part] = refund.parts as Array<{ partId: string; paymentId: string; amountCents: number }>;
      const paidAfterAll = { orderId, paymentId: part!.paymentId, refundId: part!.partId, transactionId: `rfd_${part!.partId}`, status: 'SUCCEEDED', amountCents: part!.amountCents, at: new Date().toISOString() };
      expect((await system.signedCallback('payment', paidAfterAll)).status).toBe(200);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => shownText(page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: refundId }))).toContain('the buyer was paid back twice');

      // the other unit's refund is declined too; once the payment system stops declining, the operator asks it again
      await page.getByLabel('Units of KETTLE to refund (of 1 left)').fill('1');
      await page.getByRole('button', { name: 'Refund chosen units' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Refund of 1 unit: refund \S+ is PENDING/);
      const secondId = /refund (\S+) is/.exec((await page.getByRole('status').textContent())!)![1]!;
      const second = async () =>
        ((await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items as Array<{ refundId: string; status: string; parts: Array<{ status: string }> }>).find(
          (listed) => listed.refundId === secondId,
        );
      await waitFor(async () => (await second())?.parts[0]?.status === 'FAILED', { what: 'the second refund declined' });
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => shownText(owed)).toContain(`of refund ${secondId}`);
      await page.getByRole('button', { name: 'Ask the payment system again' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(new RegExp(`^Refund asked for again: refund ${secondId} is `));
      await waitFor(async () => (await second())?.status === 'SUCCEEDED', { what: 'the refund asked again paid back' });
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => shownText(page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: secondId }))).toMatch(/declined, asked for again as part again-\S+.*SUCCEEDED/);
      expect(await owed.count()).toBe(0);
      await page.getByRole('link', { name: 'After-sales' }).click();
      // no other order of this file owes one
      await expect.poll(() => shownText(declinedList)).toContain('No orders match.');
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    }
  });

  it('tells the operator of a refund the payment system accepted and never confirmed within a day, lists its order, and asks for it again under its own id: paid once', async () => {
    const orderId = await paidOrder('ivo', 1);
    const refundsOf = async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items;
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: true } });
    const accepted = async () => {
      try {
        expect((await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('ivo'), body: { reason: 'changed my mind', items: [{ skuId: 'KETTLE', qty: 1 }] } })).status).toBe(202);
        const [refund] = await waitFor(async () => (await refundsOf())[0]?.parts[0]?.status === 'SENT' && refundsOf(), { what: 'the refund accepted by the payment system' });
        return { refundId: refund.refundId as string, part: refund.parts[0] as { partId: string; paymentId: string } };
      } finally {
        await system.paymentSim.request('PUT', '/__admin/faults', { body: { callbacksLost: false } });
      }
    };
    const { refundId, part } = await accepted();
    // a day and a minute on, its callback never came: nothing asks about it any more
    await sql`UPDATE refund_parts SET sent_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE WHERE part_id = ${part.partId}`.execute(system.env.db);

    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('link', { name: 'After-sales' }).click();
    await page.getByRole('region', { name: 'Refunds the payment system never confirmed (asked about no more)' }).getByRole('link', { name: orderId }).click();
    const unconfirmed = page.getByRole('region', { name: 'Refunds and returns' }).getByRole('alert');
    await expect.poll(() => shownText(unconfirmed)).toContain('never confirmed them; nothing asks about them any more');
    expect(await shownText(unconfirmed)).toContain(`£39.99 of refund ${refundId} to payment ${part.paymentId} (part ${part.partId}), sent`);
    expect(await shownText(page.getByRole('region', { name: 'Refunds and returns' }).getByRole('row').filter({ hasText: refundId }))).toContain('SENT, never confirmed: asked about no more');

    await unconfirmed.getByRole('button', { name: `Ask the payment system again for refund ${refundId}` }).click();
    await expect.poll(() => asked.at(-1)).toMatch(/^Ask the payment system again for this refund it never confirmed\?/);
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(new RegExp(`^Refund asked for again: refund ${refundId} is `));
    await waitFor(async () => (await refundsOf())[0]?.status === 'SUCCEEDED', { what: 'the refund asked for again confirmed' });
    const paidBack = (await system.paymentSim.request('GET', '/__admin/payments')).body.refunds as Array<{ refundId: string; amountCents: number }>;
    expect(paidBack.filter((refund) => refund.refundId === part.partId).map((refund) => refund.amountCents)).toEqual([3_999]);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => unconfirmed.count()).toBe(0);
  });

  it('tells the operator of a payment the payment system never reported on within a day, lists its order, and asks about it again under its own id: the order is paid, charged once', async () => {
    const orderId = await system.checkout('uma', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const charges = async () => ((await system.paymentSim.request('GET', '/__admin/payments')).body.payments as Array<{ orderId: string; charges: number }>).filter((p) => p.orderId === orderId).map((p) => p.charges);
    // received and left undecided there (PROCESSING, no callback); decided when next asked about
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { paymentsUndecided: true } });
    let paymentId: string;
    try {
      paymentId = (await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('uma'), body: { method: 'card' } })).body.paymentId;
      await waitFor(async () => (await charges()).length === 1, { what: 'the payment received by the payment system' });
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { paymentsUndecided: false } });
    }
    // a day and a minute on, never reported on: nothing asks about it any more
    await sql`UPDATE payments SET first_requested_at = UTC_TIMESTAMP(3) - INTERVAL 1441 MINUTE WHERE payment_id = ${paymentId}`.execute(system.env.db);

    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByRole('link', { name: 'After-sales' }).click();
    await page.getByRole('region', { name: 'Payments the payment system never reported on (asked about no more)' }).getByRole('link', { name: orderId }).click();
    const givenUp = page.getByRole('region', { name: 'Payment', exact: true }).getByRole('alert');
    await expect.poll(() => shownText(givenUp)).toContain('never reported on these payments; nothing asks about them any more');
    expect(await shownText(givenUp)).toContain(`£39.99 of payment ${paymentId}, first sent`);

    await givenUp.getByRole('button', { name: `Ask the payment system again about payment ${paymentId}` }).click();
    await expect.poll(() => asked.at(-1)).toMatch(/^Ask the payment system again about this payment it never reported on\?/);
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(new RegExp(`^Payment asked about again: payment ${paymentId} is PENDING, asked about again`));
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    expect(await charges()).toEqual([1]);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => givenUp.count()).toBe(0);
  });

  it("says what a delivered order's completion waits for while the buyer is still owed a refund of a return", async () => {
    const orderId = await paidOrder('ida', 2);
    for (const event of ['SHIPPED', 'DELIVERED']) await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } });
    await system.waitForStatus(orderId, 'DELIVERED');
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('ida'), body: { reason: 'one too many', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    expect(asked.status).toBe(202);
    await system.request('POST', `/v1/orders/${orderId}/returns/${asked.body.returnId}/approve`, { token: system.token('shop', 'merchant') });
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
    try {
      await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'RETURN_RECEIVED' } });
      await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items[0]?.parts[0]?.status === 'FAILED', { what: 'the return\'s refund declined' });
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    }
    const { nextTimer } = await system.order(orderId);
    expect(nextTimer.refundsOwed).toHaveLength(1);
    await page.goto(`${base}/console/orders/${orderId}`);
    await expect
      .poll(() => page.getByTestId('next-timer').textContent())
      .toBe(`Completes (the after-sales window closes, once no refund is owed): ${formatTime(nextTimer.dueAt)} (held while the buyer is still owed refund ${nextTimer.refundsOwed[0]}), unless someone acts first`);
  });

  it("changes a paid order's delivery address with a form, warns when the order cannot be read again, and shows an order whose actions cannot be read", async () => {
    const orderId = await paidOrder('gus', 1);
    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByLabel('City').waitFor();
    // every action has a form or a route it is POSTed to: none named by the state table alone
    expect(await page.getByRole('button', { name: /change_address/ }).count()).toBe(0);
    await page.getByLabel('City').fill('Springfield');
    await page.getByRole('button', { name: 'Change address' }).click();
    await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Address changed: the order is now IN_FULFILLMENT/);
    expect((await system.order(orderId)).address.city).toBe('Springfield');
    await expect.poll(() => page.getByRole('list', { name: 'Timeline' }).textContent()).toContain('Springfield');

    // the change goes through, reading the order afterwards does not: the page says so over what it shows
    await page.route(`**/v1/orders/${orderId}`, (route) => (route.request().method() === 'GET' ? route.abort('connectionreset') : route.fallback()));
    await page.getByLabel('City').fill('Shelbyville');
    await page.getByRole('button', { name: 'Change address' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('Could not read the order again');
    await page.unroute(`**/v1/orders/${orderId}`);
    await page.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => page.getByRole('alert').count()).toBe(0);

    await page.route('**/actions', (route) => route.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify({ status: 503, code: 'SERVICE_UNAVAILABLE', detail: 'MySQL is unavailable; retry shortly' }) }));
    await page.reload();
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
    expect(await page.getByText('Your actions could not be read: MySQL is unavailable').count()).toBe(1);
    await page.unroute('**/actions');
    await shot('15-address-changed');
  });

  it('reads the orders again on Search with the same filter, shows a page that cannot be read as its problem, and moves one page on a double click of Next', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 41; i++) ids.push(await system.checkout('pat', [{ skuId: 'KETTLE', qty: 1 }], `pat-${i}`));
    const listed = async () => (await system.request('GET', '/v1/admin/orders?userId=pat&limit=100', { token: system.token('ops', 'admin') })).body.items.length;
    await waitFor(async () => (await listed()) === ids.length, { what: "pat's orders in MySQL", timeoutMs: 15_000 });
    await page.goto(`${base}/console/`);
    await page.getByLabel('Buyer').fill('pat');
    await page.getByRole('button', { name: 'Search' }).click();
    const firstRow = () => page.locator('tbody th').first().textContent();
    await expect.poll(firstRow).toBe(ids.at(-1));
    ids.push(await system.checkout('pat', [{ skuId: 'KETTLE', qty: 1 }], 'pat-41'));
    await waitFor(async () => (await listed()) === ids.length, { what: "pat's newest order in MySQL", timeoutMs: 15_000 });
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(firstRow).toBe(ids.at(-1));

    await page.getByRole('button', { name: 'Next page' }).dblclick();
    await expect.poll(() => page.locator('caption').textContent()).toBe('Orders, page 2');
    // newest first: page 2 starts with the 21st newest
    expect(await firstRow()).toBe(ids.at(-21));
    expect(await page.getByText('Page 2', { exact: true }).count()).toBe(1);

    // the address keeps the page shown: a reload, and the way back from one of its orders, show it again; Previous still goes back
    const caption = () => page.locator('caption').textContent();
    await page.getByRole('button', { name: 'Next page' }).click();
    await expect.poll(caption).toBe('Orders, page 3');
    await page.reload();
    await expect.poll(caption).toBe('Orders, page 3');
    expect([await firstRow(), await page.getByLabel('Buyer').inputValue()]).toEqual([ids.at(-41), 'pat']);
    await page.getByRole('link', { name: ids.at(-41) }).click();
    await page.getByRole('link', { name: '← Orders' }).click();
    await expect.poll(caption).toBe('Orders, page 3');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await expect.poll(caption).toBe('Orders, page 2');
    expect(await firstRow()).toBe(ids.at(-21));
    await page.reload();
    await expect.poll(caption).toBe('Orders, page 2');

    await page.route((url) => url.pathname === '/v1/admin/orders', (route) => route.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify({ status: 503, code: 'SERVICE_UNAVAILABLE', detail: 'MySQL is unavailable; retry shortly' }) }), { times: 1 });
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toBe('Page 1 could not be read: MySQL is unavailable; retry shortly');
    expect(await page.locator('table').count()).toBe(0);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(firstRow).toBe(ids.at(-1));
  });

  it('refreshes the after-sales lists on demand', async () => {
    await page.getByRole('link', { name: 'After-sales' }).click();
    const review = page.getByRole('region', { name: 'Returns to review' });
    await review.getByRole('button', { name: 'Refresh' }).waitFor();
    const orderId = await deliveredOrder('hal');
    await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token('hal'), body: { reason: 'leaks', items: [{ skuId: 'KETTLE', qty: 1 }] } });
    await system.waitForStatus(orderId, 'RETURN_REQUESTED');
    expect(await review.getByRole('link', { name: orderId }).count()).toBe(0);
    await review.getByRole('button', { name: 'Refresh' }).click();
    await review.getByRole('link', { name: orderId }).waitFor();
  });

  it('lists the dead letters for an admin, replays one, drops one whose work was done by hand, and never offers to drop accepted orders', async () => {
    const deadLetter = system.workers.deps.queues.deadLetter;
    // a refund job of a paid order that failed every attempt, a warehouse update settled by hand, and a persist job of accepted orders
    const orderId = await paidOrder('lea', 1);
    const failedAt = new Date().toISOString();
    await addDeadLetter(deadLetter, 'payments-refund-lea', { queue: 'payments', name: 'refund-payments', jobId: 'refund-lea', data: { orderId }, failedReason: 'the payment system refused the refund', attemptsMade: 5, failedAt });
    await addDeadLetter(deadLetter, 'fulfillment-update-lea', { queue: 'fulfillment', name: 'update-fulfilment', jobId: 'update-lea', data: { orderId }, failedReason: 'the warehouse refused the change', attemptsMade: 5, failedAt });
    await addDeadLetter(deadLetter, 'orders-batch-lea', {
      queue: 'orders',
      name: 'persist-orders',
      jobId: 'batch-lea',
      data: { orders: [{ orderId: '01JDLQCONSOLE0000000000001' }, { orderId: '01JDLQCONSOLE0000000000002' }] },
      failedReason: 'There is no SKU LOST',
      attemptsMade: 5,
      failedAt,
    });
    try {
      // the order's page says its jobs failed for good: nothing does their work until replayed
      await page.goto(`${base}/console/orders/${orderId}`);
      const failed = page.getByRole('region', { name: 'Failed for good' });
      await expect.poll(() => shownText(failed.getByRole('alert'))).toBe('2 jobs of this order failed every attempt: nothing does their work until replayed once the cause is fixed.');
      expect(await failed.getByRole('table', { name: `Dead letters of order ${orderId}` }).getByRole('rowheader').allTextContents()).toEqual(['payments-refund-lea', 'fulfillment-update-lea']);
      await page.getByRole('link', { name: 'Dead letters' }).click();
      await page.getByRole('table', { name: '3 dead letters' }).waitFor();
      const table = page.getByRole('table');
      const row = (letterId: string) => table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: letterId }) });
      expect(await shownText(row('payments-refund-lea'))).toContain(`payments/refund-payments${orderId}5`);
      expect(await shownText(row('orders-batch-lea'))).toContain('01JDLQCONSOLE0000000000001, 01JDLQCONSOLE0000000000002');
      // accepted orders' buyers were told: replay only
      expect(await row('orders-batch-lea').getByRole('button', { name: /Drop/ }).count()).toBe(0);
      await shot('17-dead-letters');

      await row('payments-refund-lea').getByRole('button', { name: 'Replay payments-refund-lea' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Replayed payments-refund-lea -> payments\/refund-payments \(order \S+\): added again as job/);
      await page.getByRole('table', { name: '2 dead letters' }).waitFor();
      await row('fulfillment-update-lea').getByRole('button', { name: 'Drop fulfillment-update-lea' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toBe(`Dropped fulfillment-update-lea (fulfillment/update-fulfilment, order ${orderId})`);
      await page.getByRole('table', { name: '1 dead letter' }).waitFor();
      expect(await deadLetter.getJob('payments-refund-lea')).toBeUndefined();
      // after an outage: every letter shown replayed at once (here a second refund job of the order's)
      await addDeadLetter(deadLetter, 'payments-refund-lea-2', { queue: 'payments', name: 'refund-payments', jobId: 'refund-lea-2', data: { orderId }, failedReason: 'the payment system was away', attemptsMade: 5, failedAt });
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('table', { name: '2 dead letters' }).waitFor();
      await deadLetter.remove('orders-batch-lea');
      await page.getByRole('button', { name: 'Replay all 2 shown' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toBe('Replayed 1 dead letter; 0 left');
      await expect.poll(() => shownText(page.locator('p.empty'))).toBe('No dead letters.');
      // the replayed refund job ran: the order had nothing to pay back, and stays as it was
      await waitFor(async () => (await system.workers.deps.queues.payments.getJobCounts('waiting', 'active', 'delayed')).waiting === 0, { what: 'the replayed job run' });
      expect((await system.order(orderId)).status).toBe('IN_FULFILLMENT');
    } finally {
      await deadLetter.remove('orders-batch-lea');
    }
    // a merchant has no such page
    await inTabOfItsOwn(system.token('shop', 'merchant'), async (tab) => {
      expect(await tab.getByRole('link', { name: 'Dead letters' }).count()).toBe(0);
    });
  });

  it('creates one flash sale on a double click, and reads a slow sale one read at a time', async () => {
    const posts: string[] = [];
    const countPosts = (request: { method(): string; url(): string }) => void (request.method() === 'POST' && posts.push(request.url()));
    page.on('request', countPosts);
    await page.getByRole('link', { name: 'Flash sales' }).click();
    await page.getByLabel('SKU id').fill('FLASH-MUG');
    await page.getByLabel('Title').fill('Mug, flash sale');
    await page.getByLabel('Merchant').fill('shop');
    await page.getByLabel('List price (cents)').fill('900');
    await page.getByLabel('Flash-sale price (cents)').fill('500');
    await page.getByLabel('Units for sale').fill('5');
    await page.getByRole('button', { name: 'Create flash sale' }).dblclick();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('5');
    page.off('request', countPosts);
    expect(posts.filter((url) => url.endsWith('/v1/admin/skus'))).toHaveLength(1);
    expect(await page.getByRole('alert').count()).toBe(0);

    // each read takes 1.5 s: a read every second would keep two in flight, and their answers cross
    let inFlight = 0;
    let mostInFlight = 0;
    let reads = 0;
    await page.route('**/v1/admin/skus/FLASH-MUG', async (route) => {
      reads++;
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await route.continue().finally(() => inFlight--);
    });
    // two reads through the slow route, however long a loaded box takes to send them: a second one
    // sent while the first is still in flight is what the page must not do
    await expect.poll(() => reads, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    await page.unrouteAll({ behavior: 'wait' });
    expect(mostInFlight).toBe(1);
  });

  it('creates a flash sale whose answer was lost: sent again after a reload, the same create reads as created, not as an existing SKU', async () => {
    await page.getByRole('link', { name: 'Flash sales' }).click();
    const form = page.getByRole('form', { name: 'Create a flash-sale SKU' });
    const fill = async () => {
      await form.getByLabel('SKU id').fill('FLASH-JUG');
      await form.getByLabel('Title').fill('Jug, flash sale');
      await form.getByLabel('Merchant').fill('shop');
      await form.getByLabel('List price (cents)').fill('1200');
      await form.getByLabel('Flash-sale price (cents)').fill('700');
      await form.getByLabel('Units for sale').fill('6');
      await form.getByLabel('Starts (your time', { exact: false }).fill('2026-01-01T00:00');
      await form.getByLabel('Ends (your time', { exact: false }).fill('2099-01-01T00:00');
    };
    await fill();
    // the api creates the SKU, and its answer never reaches the browser
    const creates = (url: URL) => url.pathname === '/v1/admin/skus';
    await page.route(creates, async (route) => {
      await route.fetch();
      await route.abort('connectionreset');
    });
    await form.getByRole('button', { name: 'Create flash sale' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('cannot be reached');
    await page.unroute(creates);
    expect((await system.request('GET', '/v1/admin/skus/FLASH-JUG', { token: system.token('ops', 'admin') })).status).toBe(200);

    await page.reload();
    await form.waitFor();
    await fill();
    await form.getByRole('button', { name: 'Create flash sale' }).click();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('6');
    expect(await page.getByRole('alert').count()).toBe(0);
    const openings = await system.env.db.selectFrom('stock_ledger').select('qty').where('sku_id', '=', 'FLASH-JUG').execute();
    expect(openings.map((row) => Number(row.qty))).toEqual([6]);

    // created, its key is forgotten: another create of that id is one of an existing SKU
    await form.getByRole('button', { name: 'Create flash sale' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toMatch(/SKU_EXISTS|exists/);
  });

  it("shows the api's reason on the sign-in page when it refuses the token", async () => {
    const [header, claims] = system.token('ops', 'admin').split('.');
    await signOut();
    // the orders page reads the api at once, which refuses the token
    await page.goto(`${base}/console/`);
    await page.getByLabel('Token').fill(`${header}.${claims}.c2lnbmVkIHdpdGggYW5vdGhlciBzZWNyZXQ`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toMatch(/^Signed out: \S/);
    await page.getByLabel('Token').waitFor();
    await shot('16-signed-out-with-reason');
  });
});
