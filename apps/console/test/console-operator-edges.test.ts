import { rm } from 'node:fs/promises';
import { loadConfig } from '@orders/config';
import { addDeadLetter } from '@orders/queues';
import { buyerAddress, signToken, waitFor } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';
import { buildConsole, launchChromium, serveConsole, signIn } from './support/browser.js';

/**
 * What an operator meets at 3 a.m. on an order's page and the sale monitor: reads that fail (the
 * api answering 503), refunds recorded before a split, and the runbook's first step for a wrong
 * price (the stock set to 0). The console is built into a folder of this file's own and served
 * from there (support/browser.ts). The fulfilment queue is served only after an order was
 * refunded before its split (refunds-before-split.test.ts).
 */
describe('the console for an operator: failed reads, refunds before a split, stopping a sale', () => {
  let system: OrderSystem;
  let fulfilment: RunningWorkers | undefined;
  let browser: Browser;
  let page: Page;
  let base: string;
  let built: string;
  /** an order of the shop's LAMP and the potter's MUG, one of each refunded by its buyer before it split */
  let mixedOrder: string;
  let lampChild: string;

  const shownText = async (elements: Locator): Promise<string> => (await elements.allTextContents()).join('\n');

  const signInAs = (token: string, tab = page) => signIn(tab, base, token);

  /** The shop's SKU of `stock` units in `stockBuckets` at `listCents`, its flash sale at `saleCents` from `startsInMs` from now (negative: running) for an hour. */
  async function flashSku(skuId: string, listCents: number, saleCents: number, stock: number, startsInMs: number, stockBuckets = 1): Promise<void> {
    const now = Date.now();
    const flashSale = { priceCents: saleCents, startsAt: new Date(now + startsInMs).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 1 };
    await system.createSku({ skuId, priceCents: listCents, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock, deduction: 'placement', flashSale, stockBuckets });
  }

  async function paidOrder(buyer: string): Promise<string> {
    const orderId = await system.checkout(buyer, [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    return orderId;
  }

  beforeAll(async () => {
    built = await buildConsole('console-operator-edges');
    system = await startOrderSystem('console_operator_edges', { WORKER_QUEUES: 'orders,timers,payments' });
    base = `http://127.0.0.1:${(system.api.server.address() as { port: number }).port}`;
    await system.createSku({ skuId: 'KETTLE', priceCents: 3_999, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 50, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 1_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
    await system.createSku({ skuId: 'MUG', priceCents: 899, merchantId: 'potter', channel: 'third_party', warehouseId: 'wh-west', stock: 10, deduction: 'placement' });

    // paid, not split yet (nothing serves fulfillment): the buyer gets one lamp and one mug back
    mixedOrder = await system.checkout('ann', [{ skuId: 'LAMP', qty: 2 }, { skuId: 'MUG', qty: 2 }]);
    await system.waitForStatus(mixedOrder, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${mixedOrder}/pay`, { token: system.token('ann'), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(mixedOrder, 'PAID');
    const refunded = await system.request('POST', `/v1/orders/${mixedOrder}/refunds`, { token: system.token('ann'), body: { reason: 'one too many', items: [{ skuId: 'LAMP', qty: 1 }, { skuId: 'MUG', qty: 1 }] } });
    expect(refunded.status).toBe(202);
    await system.waitForRefund(mixedOrder);

    fulfilment = startWorkers(connectWorker(loadConfig({ ...system.env.env, WORKER_QUEUES: 'fulfillment' }), pino({ level: 'silent' })));
    const children = (await waitFor(
      async () => {
        const order = await system.order(mixedOrder);
        const subs = await Promise.all(order.subOrders.map((id: string) => system.order(id)));
        return subs.length === 2 && subs.every((s) => s.status === 'IN_FULFILLMENT') && subs;
      },
      { what: `order ${mixedOrder} split`, timeoutMs: 20_000 },
    )) as Array<{ orderId: string; items: Array<{ skuId: string }> }>;
    lampChild = children.find((child) => child.items[0]!.skuId === 'LAMP')!.orderId;

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    page.on('dialog', (dialog) => void dialog.accept());
    await serveConsole(page, base, built);
    await signInAs(system.token('ops', 'admin'));
  });
  afterAll(async () => {
    await browser?.close();
    await fulfilment?.close();
    await system?.close();
    if (built) await rm(built, { recursive: true, force: true });
  });

  it("says so when an order's dead letters cannot be read, rather than show the order as if none of its jobs failed", async () => {
    const orderId = await paidOrder('dora');
    const deadLetter = system.workers.deps.queues.deadLetter;
    await addDeadLetter(deadLetter, 'payments-refund-dora', { queue: 'payments', name: 'refund-payments', jobId: 'refund-dora', data: { orderId }, failedReason: 'the payment system refused the refund', attemptsMade: 5, failedAt: new Date().toISOString() });
    try {
      await page.route(
        (url) => url.pathname === '/v1/admin/dead-letters' && url.searchParams.has('orderId'),
        (route) => route.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify({ status: 503, code: 'SERVICE_UNAVAILABLE', detail: 'Redis is unavailable; retry shortly' }) }),
      );
      await page.goto(`${base}/console/orders/${orderId}`);
      await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
      // the admin must learn that whether a job of this order failed for good is unknown
      await expect.poll(() => shownText(page.getByRole('alert')), { timeout: 5_000 }).toContain('Redis is unavailable');
    } finally {
      await page.unrouteAll({ behavior: 'wait' });
      await serveConsole(page, base, built);
      await deadLetter.remove('payments-refund-dora');
    }
  });

  it('pages through the dead letters of a mass failure: the next page shows those after the oldest hundred', async () => {
    const deadLetter = system.workers.deps.queues.deadLetter;
    const failedAt = new Date().toISOString();
    // a bad deploy: 105 warehouse updates failed for good
    const ids = Array.from({ length: 105 }, (_, n) => `fulfillment-update-mass-${String(n).padStart(3, '0')}`);
    await deadLetter.addBulk(
      ids.map((jobId, n) => ({
        name: 'dead-letter',
        data: { queue: 'fulfillment', name: 'update-fulfilment', jobId: `update-mass-${n}`, data: { orderId: `01JDLQMASS0000000000000${String(n).padStart(3, '0')}` }, failedReason: 'the warehouse refused the change', attemptsMade: 5, failedAt },
        opts: { jobId },
      })),
    );
    try {
      await page.goto(`${base}/console/dead-letters`);
      const listed = () => page.getByRole('table').getByRole('rowheader').allTextContents();
      await page.getByRole('table', { name: 'Dead letters 1 to 100 of 105, oldest first' }).waitFor();
      expect(await listed()).toEqual(ids.slice(0, 100));
      const pages = page.getByRole('navigation', { name: 'Pages of dead letters' });
      expect(await pages.getByRole('button', { name: 'Previous page' }).isDisabled()).toBe(true);

      await pages.getByRole('button', { name: 'Next page' }).click();
      await page.getByRole('table', { name: 'Dead letters 101 to 105 of 105, oldest first' }).waitFor();
      expect(await listed()).toEqual(ids.slice(100));
      expect(await pages.getByRole('button', { name: 'Next page' }).isDisabled()).toBe(true);
      // the api replays the oldest letters, not those of this page: not offered here
      expect(await page.getByRole('button', { name: /^Replay (all|it)/ }).count()).toBe(0);

      // a letter of this page dropped (its work done by hand): the page reads again where it is
      await page.getByRole('button', { name: `Drop ${ids[104]}` }).click();
      await page.getByRole('table', { name: 'Dead letters 101 to 104 of 104, oldest first' }).waitFor();

      await pages.getByRole('button', { name: 'Previous page' }).click();
      await page.getByRole('table', { name: 'Dead letters 1 to 100 of 104, oldest first' }).waitFor();
      expect(await listed()).toEqual(ids.slice(0, 100));
    } finally {
      for (const jobId of ids) await deadLetter.remove(jobId);
    }
  });

  it("reads the order's dead letters again on Refresh: a job that failed for good since shows", async () => {
    const orderId = await paidOrder('eve');
    await page.goto(`${base}/console/orders/${orderId}`);
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
    expect(await page.getByRole('region', { name: 'Failed for good' }).count()).toBe(0);
    const deadLetter = system.workers.deps.queues.deadLetter;
    await addDeadLetter(deadLetter, 'fulfillment-update-eve', { queue: 'fulfillment', name: 'update-fulfilment', jobId: 'update-eve', data: { orderId }, failedReason: 'the warehouse refused the change', attemptsMade: 5, failedAt: new Date().toISOString() });
    try {
      await page.getByRole('button', { name: 'Refresh' }).click();
      await expect.poll(() => page.getByRole('region', { name: 'Failed for good' }).count(), { timeout: 5_000 }).toBe(1);
    } finally {
      await deadLetter.remove('fulfillment-update-eve');
    }
  });

  it("offers to read an order again when its first read failed (a 503), as it does for a later read", async () => {
    const orderId = await paidOrder('fay');
    await page.route(`**/v1/orders/${orderId}`, (route) =>
      route.fulfill({ status: 503, contentType: 'application/problem+json', body: JSON.stringify({ status: 503, code: 'SERVICE_UNAVAILABLE', detail: 'MySQL is unavailable; retry shortly' }) }),
      { times: 1 },
    );
    await page.goto(`${base}/console/orders/${orderId}`);
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('MySQL is unavailable; retry shortly');
    // the 503 said retry: the page offers it, and the order shows
    await expect.poll(() => page.getByRole('button', { name: /Reload|Retry|Try again/ }).count(), { timeout: 3_000 }).toBeGreaterThan(0);
    await page.getByRole('button', { name: /Reload|Retry|Try again/ }).first().click();
    await expect.poll(() => shownText(page.getByTestId('order-status'))).toBe('IN_FULFILLMENT');
  });

  it("does not tell an admin, on a split order's child, that a refund paid back before the split is $0.00 paid back so far", async () => {
    expect((await system.order(lampChild)).amounts.refundedCents).toBe(1_000);
    await page.goto(`${base}/console/orders/${lampChild}`);
    await expect.poll(() => shownText(page.locator('dl.amounts'))).toContain('Refunded$10.00');
    await page.getByRole('heading', { name: 'Refunds and returns' }).waitFor();
    // the refund SUCCEEDED: the payment system paid the lamp back
    expect(await shownText(page.locator('dl.amounts'))).not.toContain('paid back so far');
  });

  it("does not tell the merchant that its lamp's refund, paid back before the split, is $0.00 paid back so far", async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInAs(system.token('shop', 'merchant'));
    try {
      await page.goto(`${base}/console/orders/${mixedOrder}`);
      await expect.poll(() => shownText(page.locator('dl.amounts'))).toContain('Refunded$10.00');
      await page.getByRole('heading', { name: 'Refunds and returns' }).waitFor();
      await expect.poll(() => shownText(page.getByRole('region', { name: 'Refunds and returns' }))).toContain('LAMP ×1');
      expect(await shownText(page.locator('dl.amounts'))).not.toContain('paid back so far');
    } finally {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signInAs(system.token('ops', 'admin'));
    }
  });

  it('asks before refunding chosen units, as before a full refund: dismissed, nothing is refunded', async () => {
    const orderId = await paidOrder('gus');
    const refundsOf = async () => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token('ops', 'admin') })).body.items as unknown[];
    await page.goto(`${base}/console/orders/${orderId}`);
    await page.getByLabel('Units of KETTLE to refund (of 1 left)').fill('1');
    page.removeAllListeners('dialog');
    const asked: string[] = [];
    page.once('dialog', (dialog) => (asked.push(dialog.message()), void dialog.dismiss()));
    try {
      await page.getByRole('button', { name: 'Refund chosen units' }).click();
      await expect.poll(() => asked.length).toBe(1);
    } finally {
      page.on('dialog', (dialog) => void dialog.accept());
    }
    expect(asked[0]).toMatch(/^Refund 1 × KETTLE and pay the buyer back their share\?/);
    expect(await refundsOf()).toEqual([]);
    await page.getByRole('button', { name: 'Refund chosen units' }).click();
    await expect.poll(async () => (await refundsOf()).length).toBe(1);
  });

  it('lets an operator watching a running sale take the SKU off sale, as the page’s own hint tells them to: checkouts are refused from then on, until it is put back on sale', async () => {
    await flashSku('FLASH-TEA', 1_500, 500, 20, -60_000, 2);
    await page.goto(`${base}/console/flash-sales`);
    await page.getByLabel('SKU to watch').fill('FLASH-TEA');
    await page.getByRole('button', { name: 'Watch' }).click();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('20');
    expect(await shownText(page.locator('main'))).toContain('To stop selling, take the SKU off sale.');
    expect([await shownText(page.getByTestId('bucket-0-available')), await shownText(page.getByTestId('bucket-1-available'))]).toEqual(['10', '10']);
    expect(await shownText(page.getByTestId('on-sale-status'))).toBe('On sale: checkouts are taken.');
    await page.getByRole('button', { name: 'Take off sale' }).click();
    await expect.poll(() => shownText(page.getByTestId('on-sale-status'))).toMatch(/^Off sale since .+: every checkout is refused\.$/);
    // listed among the SKUs off sale once the page reads them again, and watched from there
    await page.reload();
    await page.getByRole('button', { name: 'Watch FLASH-TEA' }).click();
    await expect.poll(() => shownText(page.getByTestId('on-sale-status'))).toMatch(/^Off sale since /);
    const buy = (buyer: string) => system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': `tea-${buyer}` }, body: { items: [{ skuId: 'FLASH-TEA', qty: 1 }], address: buyerAddress } });
    const refused = await buy('late-buyer');
    expect([refused.status, refused.body.code]).toEqual([422, 'SALE_NOT_ACTIVE']);
    expect(await shownText(page.getByTestId('stock-available'))).toBe('20');

    await page.getByRole('button', { name: 'Put back on sale' }).click();
    await expect.poll(() => shownText(page.getByTestId('on-sale-status'))).toBe('On sale: checkouts are taken.');
    const listRead = page.waitForResponse((response) => response.url().includes('/v1/admin/skus?offSale=true'));
    await page.reload();
    expect((await (await listRead).json()).items).toEqual([]);
    expect(await page.getByRole('heading', { name: 'Off sale' }).count()).toBe(0);
    expect((await buy('later-buyer')).status).toBe(202);
  });

  it('offers what the api decides by its own clock, not the browser’s: a browser two hours ahead signs in with a token good for one, and a sale opening in 10 minutes is still changed, not ended', async () => {
    await flashSku('FLASH-POT', 2_000, 900, 10, 10 * 60_000);
    const ahead = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    try {
      await ahead.clock.setFixedTime(Date.now() + 2 * 3_600_000);
      await serveConsole(ahead, base, built);
      await signInAs(system.token('ops', 'admin'), ahead);
      await ahead.getByRole('link', { name: 'Flash sales' }).click();
      await ahead.getByLabel('SKU to watch').fill('FLASH-POT');
      await ahead.getByRole('button', { name: 'Watch' }).click();
      await ahead.getByRole('heading', { name: 'Change the sale before it opens' }).waitFor();
      expect(await ahead.getByRole('heading', { name: 'End the sale early' }).count()).toBe(0);

      // a token the api takes as expired is refused by its first answer (the orders page reads at once), which the sign-in page gives
      await ahead.getByRole('button', { name: 'Sign out' }).click();
      await ahead.goto(`${base}/console/`);
      await ahead.getByLabel('Token').fill(signToken(system.env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin', exp: Math.floor(Date.now() / 1000) - 60 }));
      await ahead.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => shownText(ahead.getByRole('alert'))).toBe('Signed out: The token has expired');
    } finally {
      await ahead.close();
    }
  });

  /** A running flash sale of 20 units of `skuId`, watched on the flash-sales page, whose stock the operator sets to `units`, the api's answer lost; then each buyer buys one. */
  const stockSetUnanswered = async (skuId: string, units: number, buyers: readonly string[]) => {
    await flashSku(skuId, 900, 400, 20, -60_000);
    await page.goto(`${base}/console/flash-sales`);
    await page.getByLabel('SKU to watch').fill(skuId);
    await page.getByRole('button', { name: 'Watch' }).click();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('20');
    // the api sets the stock, and its answer never reaches the browser
    const sets = (url: URL) => url.pathname === `/v1/admin/skus/${skuId}/stock`;
    await page.route(sets, async (route) => {
      await route.fetch();
      await route.abort('connectionreset');
    });
    await page.getByLabel('Sellable stock').fill(String(units));
    await page.getByRole('button', { name: 'Set the stock' }).click();
    await expect.poll(() => shownText(page.getByRole('alert'))).toContain('cannot be reached');
    await page.unroute(sets);
    for (const buyer of buyers) {
      const accepted = await system.request('POST', '/v1/orders', { token: system.token(buyer), headers: { 'idempotency-key': buyer }, body: { items: [{ skuId, qty: 1 }], address: buyerAddress } });
      expect(accepted.status).toBe(202);
    }
  };

  it('sends a stock set whose answer was lost again under its key: the units sold in between stay sold', async () => {
    await stockSetUnanswered('FLASH-CUP', 10, ['cup-1', 'cup-2', 'cup-3']);

    await page.getByRole('button', { name: 'Set the stock' }).click();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('7');
    expect(await page.getByRole('alert').count()).toBe(0);
    const setsMade = () => system.env.db.selectFrom('stock_ledger').select('ref').where('sku_id', '=', 'FLASH-CUP').where('ref', 'like', 'set:%').execute();
    expect(await setsMade()).toHaveLength(1);
  });

  it('makes the same figure typed again long after a set sent without an answer a set of its own', async () => {
    await stockSetUnanswered('FLASH-BOWL', 5, ['bowl-1']);
    // 20 minutes on, the operator sets 5 again on purpose
    await page.evaluate(`(() => {
      for (const name of Object.keys(sessionStorage).filter((key) => key.endsWith(':sku:FLASH-BOWL:stock-set-attempt'))) {
        const draft = JSON.parse(sessionStorage.getItem(name));
        sessionStorage.setItem(name, JSON.stringify({ ...draft, at: draft.at - 20 * 60000 }));
      }
    })()`);

    await page.getByRole('button', { name: 'Set the stock' }).click();
    await expect.poll(() => shownText(page.getByTestId('stock-available'))).toBe('5');
  });
});
