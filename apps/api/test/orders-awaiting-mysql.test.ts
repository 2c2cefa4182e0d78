import { buyerAddress, createSku, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type HttpAnswer, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HIGH_WATER_MARK = 40;
const BUYERS_PER_WAVE = 15;

/** orders_awaiting_mysql as a scrape of the api's /metrics shows it; undefined when it is not there. */
async function ordersAwaitingMysql(url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = /^orders_awaiting_mysql(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return line ? Number(line[1]) : undefined;
}

describe('orders awaiting MySQL, as the dashboards show the backlog the intake sheds load by', () => {
  let env: TestEnv;
  let api: ApiProcess;

  beforeAll(async () => {
    // no worker runs: every accepted order waits; two api processes, each sampling the backlog
    env = await createTestEnv('orders_awaiting_mysql', { QUEUE_HIGH_WATER_MARK: String(HIGH_WATER_MARK), API_PROCESSES: '2' });
    api = await startApiProcess(env.env, 20);
    await createSku(api, signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' }), {
      skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 1_000, deduction: 'placement',
    });
  });

  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it('reads at least QUEUE_HIGH_WATER_MARK once the intake sheds checkouts, and counts each order once for the instance, not once per api process', { timeout: 60_000 }, async () => {
    const answers: HttpAnswer[] = [];
    const checkout = (i: number) =>
      api.request('POST', '/v1/orders', {
        token: signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }),
        headers: { 'idempotency-key': `kettle-${i}` },
        body: { items: [{ skuId: 'KETTLE', qty: 1 }], address: buyerAddress },
      });
    // waves of buyers, each after the api sampled the backlog again, until it sheds
    while (!answers.some((answer) => answer.status === 503)) {
      const from = answers.length;
      answers.push(...(await Promise.all(Array.from({ length: BUYERS_PER_WAVE }, (_, i) => checkout(from + i)))));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const accepted = answers.filter((answer) => answer.status === 202).length;
    expect(answers.filter((answer) => answer.status !== 202).every((answer) => answer.status === 503 && answer.body.code === 'OVERLOADED')).toBe(true);
    expect(accepted).toBeGreaterThanOrEqual(HIGH_WATER_MARK);

    // once both processes have sampled the backlog since the last checkout, every scrape says how many orders wait
    await waitFor(async () => (await ordersAwaitingMysql(api.url)) === accepted, { what: `orders_awaiting_mysql to read the ${accepted} accepted orders`, intervalMs: 100 });
    for (let scrape = 0; scrape < 4; scrape++) expect(await ordersAwaitingMysql(api.url)).toBe(accepted);
    expect(await ordersAwaitingMysql(api.url)).toBeGreaterThanOrEqual(HIGH_WATER_MARK);
  });
});
