// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { channelOrder, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

/**
 * Counters an operator reads as "how many times did this happen" must count each event once: not
 * once per delivery of the callback reporting it (the payment system and the warehouse send a
 * callback again whenever our answer is lost, and the callbacks are idempotent: "a repeat answers
 * 200 and changes nothing"; the payment amount mismatches are counted "once, not per repeat"), and
 * not zero on a path that does what the help text names.
 */
describe('the counters an operator reads as events: each event once, and every series from 0', () => {
  let system: OrderSystem;
  let admin: string;
  let merchant: string;

  beforeAll(async () => {
    system = await startOrderSystem('counters_operators_read');
    admin = system.token('ops', 'admin');
    merchant = system.token('shop', 'merchant');
    await system.createSku({ skuId: 'TV', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
    await system.createSku({ skuId: 'LAMP', priceCents: 2_400, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 20, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    await system?.close();
  });

  const metricsText = async () => (await system.request('GET', '/metrics')).body as string;
  const refundsCounted = async (outcome: string) =>
    Number(new RegExp(`^order_refunds_total\\{[^}]*kind="refund"[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(await metricsText())?.[1] ?? 0);
  const returnParcelsAfterClose = async () => Number(/^return_parcels_after_close_total(?:\{[^}]*\})? (\S+)$/m.exec(await metricsText())?.[1] ?? 0);
  const refundsOf = async (orderId: string, buyer: string) => (await system.request('GET', `/v1/orders/${orderId}/refunds`, { token: system.token(buyer) })).body.items;

  it('counts a buyer paid back twice once, not once more for each time the payment system sends its late SUCCEEDED callback again (order_refunds_total{outcome="succeeded_after_settled_by_hand"})', async () => {
    const buyer = 'noa';
    const orderId = await system.checkout(buyer, [{ skuId: 'TV', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } })).status).toBe(202);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    // the payment system declines the refund: the part FAILED
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: true } });
    expect((await system.request('POST', `/v1/orders/${orderId}/cancel`, { token: system.token(buyer), body: { reason: 'changed my mind' } })).status).toBe(200);
    const [{ refundId, parts: [part] }] = await waitFor(
      async () => {
        const listed = await refundsOf(orderId, buyer);
        return listed[0]?.parts[0]?.status === 'FAILED' && listed;
      },
      { what: "the refund's part to fail" },
    );
    await system.paymentSim.request('PUT', '/__admin/faults', { body: { refundsDeclined: false } });
    // the shop pays it back another way
    const settled = await system.request('POST', `/v1/orders/${orderId}/refunds/${refundId}/settle-by-hand`, { token: admin, body: { reference: 'SEPA-0042' } });
    expect([settled.status, settled.body.status]).toEqual([200, 'SUCCEEDED']);
    await system.waitForStatus(orderId, 'REFUNDED');

    // the payment system pays the declined part after all, once: the buyer has the money twice, one event
    const before = await refundsCounted('succeeded_after_settled_by_hand');
    const late = { orderId, paymentId: part.paymentId, refundId: part.partId, transactionId: 'rfd-late', status: 'SUCCEEDED', amountCents: part.amountCents, at: new Date().toISOString() };
    const first = await system.signedCallback('payment', late);
    expect([first.status, first.body]).toEqual([200, { changed: false, status: 'REFUNDED' }]);
    expect(await refundsCounted('succeeded_after_settled_by_hand')).toBe(before + 1);
    // its callback sent again, byte for byte (our 200 lost on the way back): nothing happened again
    const repeat = await system.signedCallback('payment', late);
    expect([repeat.status, repeat.body]).toEqual([200, { changed: false, status: 'REFUNDED' }]);
    expect(await refundsCounted('succeeded_after_settled_by_hand'), 'one part paid twice, reported twice, counted as two buyers paid twice').toBe(before + 1);
  });

  it('counts the parcel of a refused return once, not once more for each time the warehouse sends the same RETURN_RECEIVED again (return_parcels_after_close_total)', async () => {
    const buyer = 'ned';
    const orderId = await system.checkout(buyer, [{ skuId: 'LAMP', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token(buyer), body: { method: 'card' } });
    await system.waitForStatus(orderId, 'IN_FULFILLMENT');
    for (const event of ['SHIPPED', 'DELIVERED']) {
      expect((await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event } })).body.callbackStatus).toBe(200);
    }
    const asked = await system.request('POST', `/v1/orders/${orderId}/returns`, { token: system.token(buyer), body: { reason: 'changed my mind', items: [{ skuId: 'LAMP', qty: 1 }] } });
    expect(asked.status).toBe(202);
    const returnId = asked.body.returnId as string;
    const refused = await system.request('POST', `/v1/orders/${orderId}/returns/${returnId}/refuse`, { token: merchant });
    expect(refused.body.status).toBe('REFUSED');

    // the buyer sends the parcel all the same: one parcel, for staff to settle
    const before = await returnParcelsAfterClose();
    const receipt = { orderId, event: 'RETURN_RECEIVED', returnId, at: new Date().toISOString() };
    const first = await system.signedCallback('warehouse', receipt);
    expect([first.status, first.body.changed]).toEqual([200, false]);
    expect(await returnParcelsAfterClose()).toBe(before + 1);
    // the same receipt sent again, byte for byte (our 200 lost on the way back)
    const repeat = await system.signedCallback('warehouse', receipt);
    expect([repeat.status, repeat.body.changed]).toEqual([200, false]);
    expect(await returnParcelsAfterClose(), 'one parcel, reported twice, counted as two parcels').toBe(before + 1);
  });

  it('counts an imported order its channel reports cancelled (its warehouse told to drop the parcel, the channel paying the buyer back) in order_cancellations_total{stage="paid_in_channel"}, as it counts one the shop cancels', async () => {
    const cancelledInChannel = async () => Number(/^order_cancellations_total\{[^}]*stage="paid_in_channel"[^}]*\} (\S+)$/m.exec(await metricsText())?.[1] ?? 0);
    const imported = (externalOrderId: string, status: string) => channelOrder(externalOrderId, { status });
    const importOrders = (orders: object[]) => system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'tmall', orders } });
    const first = await importOrders([imported('TM-1', 'PAID'), imported('TM-2', 'PAID')]);
    expect([first.status, first.body.imported], JSON.stringify(first.body)).toEqual([200, 2]);
    const [byShop, byChannel] = first.body.results.map((result: any) => result.orderId as string);

    // the shop cancels one: counted
    const before = await cancelledInChannel();
    const cancelled = await system.request('POST', `/v1/orders/${byShop}/cancel`, { token: admin, body: { reason: 'out of stock at the warehouse' } });
    expect([cancelled.status, cancelled.body.status]).toEqual([200, 'CANCELLED']);
    expect(await cancelledInChannel()).toBe(before + 1);

    // its channel cancels the other (the buyer paid back there): the order is CANCELLED here and its warehouse told, as above
    const resent = await importOrders([imported('TM-2', 'CANCELLED')]);
    expect([resent.status, resent.body.results[0].outcome, resent.body.results[0].status]).toEqual([200, 'advanced', 'CANCELLED']);
    expect((await system.order(byChannel)).status).toBe('CANCELLED');
    expect(await cancelledInChannel(), 'an imported order cancelled by its channel is not counted as cancelled').toBe(before + 2);
  });

  it('raises ImportedOrderConflicts for the first imported order a channel reports in a status it cannot reach here (the series must exist at 0 before it, or increase() reads its first sample as no change)', async () => {
    const run = promisify(execFile);
    const promtool = await run('promtool', ['--version']).then(
      () => true,
      () => false,
    );
    expect(promtool, 'promtool is installed').toBe(true);
    const conflicts = async () => /^imported_order_conflicts_total\{[^}]*channel="jd"[^}]*\} (\S+)$/m.exec(await metricsText())?.[1];
    const order = (status: string) => channelOrder('JD-1', { status });
    // the channel's order, shipped: imported, no conflict yet; what a scrape reads of the conflicts then
    const shipped = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'jd', orders: [order('SHIPPED')] } });
    expect([shipped.status, shipped.body.imported]).toEqual([200, 1]);
    const before = await conflicts();
    // the channel cancels it (its buyer paid back there) while it shipped here: a conflict, for the shop to settle
    const cancelled = await system.request('POST', '/v1/admin/orders/import', { token: admin, body: { channel: 'jd', orders: [order('CANCELLED')] } });
    expect([cancelled.status, cancelled.body.conflicts]).toEqual([200, 1]);
    const after = await conflicts();
    expect(after).toBe('1');

    // Prometheus scrapes those values, minutes apart: does the rule fire?
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const rules = (parse(readFileSync(path.join(root, 'config/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string }> }> }).groups.flatMap(
      (group) => group.rules,
    );
    const rule = rules.find((candidate) => candidate.alert === 'ImportedOrderConflicts')!;
    const dir = mkdtempSync(path.join(tmpdir(), 'review-observability-'));
    try {
      writeFileSync(path.join(dir, 'rules.yml'), stringify({ groups: [{ name: 'none', rules: [] }] }));
      writeFileSync(
        path.join(dir, 'conflicts.test.yml'),
        stringify({
          rule_files: ['rules.yml'],
          evaluation_interval: '1m',
          tests: [
            {
              interval: '1m',
              input_series: [{ series: 'imported_order_conflicts_total{app="api", instance="api-1:3000", channel="jd"}', values: `${before ?? '_'}x5 ${after}x30` }],
              // the alert's expression returns a series for the channel (whatever its value) while it fires
              promql_expr_test: [{ expr: `count by (channel) (${rule.expr.trim()})`, eval_time: '7m', exp_samples: [{ labels: '{channel="jd"}', value: 1 }] }],
            },
          ],
        }),
      );
      const result = await run('promtool', ['test', 'rules', 'conflicts.test.yml'], { cwd: dir }).then(
        ({ stdout }) => ({ ok: true, output: stdout }),
        (error: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
      );
      expect(result, `scraped before the conflict: ${before ?? 'no series'}; after: ${after}`).toMatchObject({ ok: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exports every refund outcome the help text names from the start at 0, withdrawn and sent_again too, so the Refunds panel shows the first of them (rate() misses the first event of a series born with it)', async () => {
    // a process just started, before any refund: the api of a system of its own
    const fresh = await startOrderSystem('review_observability_fresh');
    try {
      const text = (await fresh.request('GET', '/metrics')).body as string;
      const help = /^# HELP order_refunds_total (.*)$/m.exec(text)?.[1] ?? '';
      const named = ['succeeded', 'failed', 'settled_by_hand', 'succeeded_after_settled_by_hand', 'asked_again', 'sent_again', 'succeeded_after_asked_again', 'withdrawn'];
      // the outcomes the help text names, each one of them
      for (const outcome of named) expect(help, outcome).toContain(outcome);
      const exported = new Set([...text.matchAll(/^order_refunds_total\{[^}]*kind="refund"[^}]*outcome="([a-z_]+)"[^}]*\} 0$/gm)].map((match) => match[1]));
      expect(named.filter((outcome) => !exported.has(outcome)), 'outcomes with no series before their first refund').toEqual([]);
    } finally {
      await fresh.close();
    }
  });
});
