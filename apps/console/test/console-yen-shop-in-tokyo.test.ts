import { rm } from 'node:fs/promises';
import { consoleShopTags } from '@orders/api';
import { addDeadLetter } from '@orders/queues';
import { waitFor } from '@orders/testing';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { buildConsole, launchChromium, serveConsole, signIn } from './support/browser.js';

/**
 * The console of a shop selling in yen (no minor unit), run by an operator in Tokyo, nine hours
 * ahead of UTC: its money, its times, and pages that settle by themselves. The console is built
 * into a folder of this file's own and served from there (support/browser.ts).
 */
describe('the console as an operator of a yen shop uses it from Tokyo at 3 a.m.', () => {
  let system: OrderSystem;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let base: string;
  let built: string;
  const asked: string[] = [];

  const shownText = async (elements: Locator): Promise<string> => (await elements.allTextContents()).join('\n');

  /** Serves `tab` this file's own build of the console, its page naming the shop's currency and waits as the api's does. */
  const serveWithShopTags = (tab: Page) =>
    serveConsole(
      tab,
      base,
      built,
      consoleShopTags({ currency: system.env.config.SHOP_CURRENCY, refundConfirmationGiveUpMs: system.env.config.REFUND_CONFIRMATION_GIVE_UP_MS, paymentConfirmationGiveUpMs: system.env.config.PAYMENT_CONFIRMATION_GIVE_UP_MS }),
    );

  beforeAll(async () => {
    built = await buildConsole('console-yen-tokyo');
    // a shop in yen: its amounts (*Cents) count yen, which have no minor unit
    system = await startOrderSystem('console_yen_tokyo', { WAREHOUSE_SIM_STEP_MS: '0', SHOP_CURRENCY: 'JPY' });
    base = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}`;
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'placement' });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1366, height: 768 }, timezoneId: 'Asia/Tokyo' });
    page = await context.newPage();
    page.on('dialog', (dialog) => (asked.push(dialog.message()), void dialog.accept()));
    await serveWithShopTags(page);
    await signIn(page, base, system.token('ops', 'admin'));
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await system?.close();
    if (built) await rm(built, { recursive: true, force: true });
  });

  it('searches the orders placed until 31 Dec 9999, a day the search form takes, rather than failing the page with the api\'s refusal', async () => {
    const orderId = await system.checkout('uma', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await page.goto(`${base}/console/`);
    await page.getByLabel('Buyer').fill('uma');
    await page.getByLabel('Placed until (UTC day)').fill('9999-12-31');
    await page.getByRole('button', { name: 'Search' }).click();
    // the form takes the day (it says it searches days up to 9999-12-31): uma's order is listed
    await expect.poll(() => shownText(page.locator('main')), { timeout: 5_000 }).toContain(orderId);
    expect(await shownText(page.getByRole('alert'))).toBe('');
  });

  it("says in which zone the sale monitor's last reading was taken, as every other time on the console does (the browser is in Tokyo, the console speaks UTC)", async () => {
    await system.createSku({
      skuId: 'TEA-RUSH',
      priceCents: 900,
      merchantId: 'shop',
      channel: 'self',
      warehouseId: 'wh-east',
      stock: 5,
      deduction: 'placement',
      flashSale: { priceCents: 500, startsAt: new Date(Date.now() + 3_600_000).toISOString(), endsAt: new Date(Date.now() + 7_200_000).toISOString(), perUserLimit: 1 },
    });
    await page.goto(`${base}/console/flash-sales`);
    await page.getByLabel('SKU to watch').fill('TEA-RUSH');
    await page.getByRole('button', { name: 'Watch' }).click();
    const monitor = page.getByRole('region', { name: /TEA-RUSH/ });
    await expect.poll(() => shownText(monitor), { timeout: 5_000 }).toContain('last at');
    const hint = await shownText(monitor.getByText(/Read a second after each answer/));
    // the sale's own times on the same panel read "… UTC"; the reading's time says its zone too, or is UTC
    const utcNow = new Date().toISOString().slice(11, 13);
    const shownHour = /last at (\d{2}):/.exec(hint)?.[1];
    expect(`${hint} (the UTC hour is ${utcNow})`).toMatch(/UTC|Tokyo|JST|GMT\+9/.test(hint) || shownHour === utcNow ? /./ : /a time labelled with its zone, or in UTC/);
  });

  async function paidOrder(buyer: string): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  }

  it("shows the order refunded once its refund's dead letter, replayed from the order's page, has paid the buyer back, rather than REFUNDING until a manual Refresh", async () => {
    const payments = system.workers.deps.queues.payments;
    const deadLetter = system.workers.deps.queues.deadLetter;
    // a presale whose deposit is paid: the shop calls it off, its deposit due back to the buyer
    await system.createSku({ skuId: 'NEXT-LAMP', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement', orderType: 'presale' });
    const orderId = await system.checkout('vera', [{ skuId: 'NEXT-LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_DEPOSIT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('vera'), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'DEPOSIT_PAID');
    // the refund's job fails for good (the payment system away all its attempts): its letter waits
    await payments.pause();
    try {
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ops', 'admin'), body: { reason: 'the presale is called off' } });
      expect(cancelled.status).toBeLessThan(300);
      await system.waitForStatus(orderId, 'REFUNDING');
      const job = await waitFor(async () => (await payments.getWaiting()).find((waiting) => waiting.data.orderId === orderId), { what: 'the refund job' });
      await job.remove();
      await addDeadLetter(deadLetter, 'payments-refund-vera', { queue: 'payments', name: job.name, jobId: 'refund-vera', data: job.data, failedReason: 'the payment system was away', attemptsMade: 5, failedAt: new Date().toISOString() });
    } finally {
      await payments.resume();
    }
    try {
      await page.goto(`${base}/console/orders/${orderId}`);
      await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('REFUNDING');
      const failed = page.getByRole('region', { name: 'Failed for good' });
      await failed.getByRole('button', { name: 'Replay payments-refund-vera' }).waitFor();
      // the operator reads the page a while, then replays the letter once the payment system is back
      await page.waitForTimeout(11_000);
      await failed.getByRole('button', { name: 'Replay payments-refund-vera' }).click();
      await expect.poll(() => shownText(page.getByRole('status'))).toMatch(/^Replayed payments-refund-vera/);
      await system.waitForStatus(orderId, 'REFUNDED');
      // the order's page follows what the replay did, as it does after any other action on it
      await expect.poll(() => shownText(page.getByTestId('order-status')), { timeout: 8_000 }).toBe('REFUNDED');
    } finally {
      await deadLetter.remove('payments-refund-vera');
    }
  });

  it("lists, among the refunds the payment system declined (still owed), one the buyer asked for before the order split: the money owed is on the after-sales page", async () => {
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });
    const fulfillment = system.workers.deps.queues.fulfillment;
    // paid, not split yet (its hand-over waits): the buyer gets one lamp back, which the payment system declines
    await fulfillment.pause();
    let orderId = '';
    try {
      orderId = await system.checkout('wren', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'MUG', qty: 2 }]);
      await system.waitForStatus(orderId, 'PENDING_PAYMENT');
      expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('wren'), body: { method: 'card' } })).status).toBe(202);
      await system.waitForStatus(orderId, 'PAID');
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
      try {
        const refunded = await system.request('POST', `/v1/orders/${orderId}/refunds`, { token: system.token('wren'), body: { reason: 'one too many', items: [{ skuId: 'LAMP', qty: 1 }] } });
        expect(refunded.status).toBe(202);
        await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items[0]?.parts[0]?.status === 'FAILED', { what: 'the refund declined' });
      } finally {
        await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
      }
    } finally {
      await fulfillment.resume();
    }
    await waitFor(async () => (await system.order(orderId)).subOrders.length === 2, { what: `order ${orderId} split`, timeoutMs: 20_000 });
    // the api lists it among the orders owing a declined refund
    const owing = await system.request('GET', '/v1/admin/orders?refundDeclined=true', { token: system.token('ops', 'admin') });
    expect(owing.body.items.map((order: { orderId: string }) => order.orderId)).toContain(orderId);

    await page.goto(`${base}/console/after-sales`);
    const declinedList = page.getByRole('region', { name: 'Refunds the payment system declined (still owed)' });
    await expect.poll(() => shownText(declinedList), { timeout: 5_000 }).toMatch(/No orders match\.|Refunds the payment system declined \(still owed\), page 1/);
    expect(await shownText(declinedList)).toContain(orderId);
  });

  it('does not tell the operator that the payment system pays the money back next, when it declined to and nothing asks it again until an admin does', async () => {
    const orderId = await paidOrder('xena');
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
    try {
      const cancelled = await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token('ops', 'admin'), body: { reason: 'out of stock' } });
      expect(cancelled.status).toBeLessThan(300);
      await waitFor(async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items[0]?.parts[0]?.status === 'FAILED', { what: 'the refund declined' });
    } finally {
      await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    }
    await page.goto(`${base}/console/orders/${orderId}`);
    const owed = page.getByRole('region', { name: 'Refunds and returns' }).getByRole('alert');
    await expect.poll(() => shownText(owed)).toContain('still owed to the buyer');
    expect(await shownText(page.getByTestId('order-status'))).toBe('REFUNDING');
    // the page's own "who acts next": nothing pays it back by itself; an admin asks again or settles it by hand
    expect(await shownText(page.getByTestId('next-step'))).not.toContain('The payment system pays the money back next.');
  });

  it('asks a shop in yen for its flash sale\'s prices in yen, not in cents: ¥1,200 typed as the form asks comes out as ¥1,200, not ¥120,000', async () => {
    await page.goto(`${base}/console/flash-sales`);
    // the operator types the prices in the unit each box asks for
    const priceIn = async (box: string, yen: number) => {
      const label = (await page.locator(`label[for="${box}"]`).textContent()) ?? '';
      await page.locator(`#${box}`).fill(String(/cents/i.test(label) ? yen * 100 : yen));
    };
    await page.getByLabel('SKU id').fill('TEA-YEN');
    await page.getByLabel('Title').fill('Tea, flash sale');
    await page.getByLabel('Merchant').fill('shop');
    await priceIn('sale-priceCents', 1_200);
    await priceIn('sale-salePriceCents', 800);
    await page.getByLabel('Units for sale').fill('5');
    await page.getByRole('button', { name: 'Create flash sale' }).click();
    const monitor = page.getByRole('region', { name: /TEA-YEN/ });
    await expect.poll(() => shownText(monitor), { timeout: 5_000 }).toContain('Flash price');
    expect(await shownText(monitor)).toContain('Flash price ¥800 (list ¥1,200)');
  });
});
