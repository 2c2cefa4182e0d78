import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Inventory, checkoutTimeoutsOf } from '@orders/stock';
import {
  buyerAddress,
  createTestEnv,
  freePort,
  httpClient,
  signToken,
  spawnApp,
  startApiProcess,
  waitFor,
  type ApiProcess,
  type HttpClient,
  type SpawnedProcess,
  type TestEnv,
} from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { alertmanagerBinary, startAlertmanager, type RunningAlertmanager } from './support/alertmanager.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dashboardsDir = path.join(root, 'config/grafana/dashboards');
const alertsFile = path.join(root, 'config/prometheus/alerts.yml');

/**
 * Labels whose values exist only once the event happened (a checkout error, a 5xx, a
 * final failure). An alert's selector is checked for the label, not for the value.
 */
const EVENT_LABELS = ['outcome', 'status_code', 'final'];

// ---- what the dashboards and the alert rules ask ----

interface Target {
  expr?: string;
  rawSql?: string;
  datasource?: { uid: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
}

const dashboards: Dashboard[] = readdirSync(dashboardsDir)
  .filter((file) => file.endsWith('.json'))
  .map((file) => JSON.parse(readFileSync(path.join(dashboardsDir, file), 'utf8')) as Dashboard);
const panelsOf = (dashboard: Dashboard) => dashboard.panels.filter((panel) => panel.type !== 'row');
const queriesOf = (kind: 'expr' | 'rawSql') =>
  dashboards.flatMap((dashboard) =>
    panelsOf(dashboard).flatMap((panel) =>
      (panel.targets ?? []).filter((target) => target[kind]).map((target) => ({ where: `${dashboard.title} / ${panel.title}`, query: target[kind]! })),
    ),
  );

const alertRules = (parse(readFileSync(alertsFile, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap(
  (group) => group.rules,
);

interface ScrapeConfig {
  job_name: string;
  dns_sd_configs?: Array<{ names: string[] }>;
  relabel_configs?: Array<{ source_labels: string[]; target_label: string; regex: string }>;
}
const prometheusConfig = parse(readFileSync(path.join(root, 'config/prometheus/prometheus.yml'), 'utf8')) as { global: Record<string, unknown>; scrape_configs: ScrapeConfig[] };

/** The worker stages as compose runs them: each service's queues, and the label Prometheus gives its replicas. */
const composeServices = (parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { environment: Record<string, string> }> })
  .services;
const workerJob = prometheusConfig.scrape_configs.find((config) => config.job_name === 'worker')!;
const [stageLabel] = workerJob.relabel_configs!;
const workerStages = workerJob.dns_sd_configs![0]!.names.map((service) => ({
  service,
  queues: composeServices[service]!.environment.WORKER_QUEUES!,
  labels: { [stageLabel!.target_label]: new RegExp(`^${stageLabel!.regex}$`).exec(service)![1]! },
}));

const provisionedDatasources = (
  parse(readFileSync(path.join(root, 'config/grafana/provisioning/datasources/datasources.yml'), 'utf8')) as { datasources: Array<{ uid: string }> }
).datasources.map((datasource) => datasource.uid);

/** Grafana's range variable, as Grafana would fill it in for a 1 s scrape interval over a short range. */
const asPrometheusSees = (expr: string) => expr.replaceAll('$__rate_interval', '1m');

/**
 * The vector selectors of a PromQL expression (metric name plus label matchers), with
 * matchers on event labels relaxed to "the label is there".
 */
function selectorsOf(expr: string): string[] {
  const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  const bare = expr
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const selectors = new Set<string>();
  for (const match of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers = '', call] = match;
    if (call || KEYWORDS.has(name!) || /^\d/.test(name!)) continue;
    const relaxed = [...matchers.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)].map(([, label, op, value]) =>
      EVENT_LABELS.includes(label!) ? `${label}!=""` : `${label}${op}"${value}"`,
    );
    selectors.add(`${name}{${relaxed.join(', ')}}`);
  }
  return [...selectors];
}

// ---- a real Prometheus scraping a real api and worker ----

const run = promisify(execFile);
const prometheusInstalled = await run('prometheus', ['--version']).then(
  () => true,
  () => false,
);

interface QueryResult {
  status: string;
  error?: string;
  data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

describe('Grafana dashboards', () => {
  it('include "Flash sale" and "Order pipeline" with the panels operators asked for', () => {
    const titles = Object.fromEntries(dashboards.map((dashboard) => [dashboard.title, panelsOf(dashboard).map((panel) => panel.title)]));
    expect(titles['Flash sale']).toEqual(
      expect.arrayContaining([
        'Checkouts per second by outcome',
        'Checkout latency',
        'Remaining stock of the hot SKUs',
        'Queue depth',
        'Queue lag',
        'Orders persisted per second',
        'Rejection reasons',
        'Redis memory used / maxmemory',
        'Coupon uses against their total limit',
        'Alerts firing',
        'Pays, payment callbacks and status polls per second',
      ]),
    );
    expect(titles['Order pipeline']).toEqual(
      expect.arrayContaining([
        'Orders entering each status',
        'Job latency per queue',
        'Job failures per queue',
        'Breaker states',
        'External call outcomes',
        'Dead letters',
        'CPU per instance',
        'Memory per instance',
        'Event loop lag per instance',
        'Oldest waiting job per queue',
        'Backstops / anomalies',
        'Stock drift per SKU',
        'Order events waiting to be published',
        'Webhooks behind the event stream',
        'Webhook deliveries',
        'Returns awaiting review',
        'Refunds waiting for the warehouse',
      ]),
    );
  });

  it('read only from provisioned datasources', () => {
    for (const dashboard of dashboards) {
      for (const panel of panelsOf(dashboard)) {
        expect(provisionedDatasources, `${dashboard.title} / ${panel.title}`).toContain(panel.datasource?.uid);
        for (const target of panel.targets ?? []) expect(provisionedDatasources).toContain(target.datasource?.uid);
      }
    }
  });
});

describe.skipIf(!prometheusInstalled || !alertmanagerBinary)('every dashboard panel and alert rule against a live Prometheus and Alertmanager', () => {
  const HOT_SKU = 'HOT-OPS';
  const DRIFTING_SKU = 'DRIFTING';
  const STOCK = 30;
  let env: TestEnv;
  let api: ApiProcess;
  const workers: SpawnedProcess[] = [];
  let prometheus: ChildProcess;
  let prometheusApi: HttpClient;
  let dataDir: string;
  let alertmanager: RunningAlertmanager;

  const query = async (promql: string): Promise<QueryResult> =>
    (await prometheusApi.request('GET', `/api/v1/query?query=${encodeURIComponent(promql)}`)).body as QueryResult;
  const hasFiniteValue = (result: QueryResult) => (result.data?.result ?? []).some(({ value }) => Number.isFinite(Number(value[1])));

  beforeAll(async () => {
    // short payment deadline: orders expire during the test, so the timers queue has work too (yet
    // not before a busy box has answered all 60 buyers of the sale: an expiry then would sell its unit
    // again); two attempts: the orphan order below reaches the dead-letter queue quickly; the stock
    // reconciler every second, so the drift panels have its report
    env = await createTestEnv('ops_dashboards', { FLASH_SALE_PAYMENT_TIMEOUT_MS: '5000', JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50', RECONCILE_INTERVAL_MS: '1000' });
    // the payment system is away (nothing listens there): a payment request is a failed call, and the breaker panels show it
    const awayPaymentSystem = `http://127.0.0.1:${await freePort()}`;
    api = await startApiProcess(env.env);
    const workerPorts = await Promise.all(
      workerStages.map(async (stage) => {
        const port = await freePort();
        workers.push(spawnApp('worker', { ...env.env, WORKER_QUEUES: stage.queues, WORKER_METRICS_PORT: String(port), PAYMENT_URL: awayPaymentSystem }));
        return port;
      }),
    );
    await Promise.all(
      workerPorts.map(async (port, i) => {
        const workerHttp = httpClient(`http://127.0.0.1:${port}`, 1);
        await waitFor(async () => (await workerHttp.request('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, {
          what: `${workerStages[i]!.service} to be ready`,
        }).catch((error: Error) => {
          throw new Error(`${error.message}\nworker output:\n${workers[i]!.output().slice(-2000)}`);
        });
        await workerHttp.close();
      }),
    );

    // The compose scrape configuration, with its DNS discovery swapped for this test's processes
    // and each worker stage's replica labelled as the relabelling of its DNS name labels it.
    const prometheusPort = await freePort();
    dataDir = mkdtempSync(path.join(tmpdir(), 'orders-prometheus-'));
    // with no receiver: what it holds is looked at in its API
    alertmanager = await startAlertmanager({});
    const targets: Record<string, Array<{ targets: string[]; labels?: Record<string, string> }>> = {
      api: [{ targets: [`127.0.0.1:${new URL(api.url).port}`] }],
      worker: workerStages.map((stage, i) => ({ targets: [`127.0.0.1:${workerPorts[i]}`], labels: stage.labels })),
      prometheus: [{ targets: [`127.0.0.1:${prometheusPort}`] }],
      alertmanager: [{ targets: [alertmanager.address] }],
    };
    const config = {
      global: { ...prometheusConfig.global, scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [alertsFile],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [alertmanager.address] }] }] },
      scrape_configs: prometheusConfig.scrape_configs.map(({ job_name }) => ({ job_name, static_configs: targets[job_name]! })),
    };
    writeFileSync(path.join(dataDir, 'prometheus.yml'), stringify(config));
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dataDir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dataDir, 'data')}`,
        `--web.listen-address=127.0.0.1:${prometheusPort}`,
        '--log.level=warn',
        // a firing alert is sent again every minute: the first, sent before Alertmanager was discovered, is dropped
        '--rules.alert.resend-delay=1s',
      ],
      { stdio: 'ignore' },
    );
    prometheusApi = httpClient(`http://127.0.0.1:${prometheusPort}`, 4);
    await waitFor(async () => (await prometheusApi.request('GET', '/-/ready').catch(() => ({ status: 0 }))).status === 200, { what: 'Prometheus to be ready' });
    // the sale starts once Prometheus watches: rates and quantiles need samples from before and after it
    const scraped = async (promql: string) => hasFiniteValue(await query(promql));
    await waitFor(() => scraped(`count(up == 1) == ${3 + workerStages.length}`), { what: 'Prometheus to scrape the api, the worker stages, Alertmanager and itself', intervalMs: 250 });

    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    const now = Date.now();
    const createSku = async (skuId: string, stock: number, flashSale: boolean) => {
      const created = await api.request('POST', '/v1/admin/skus', {
        token: admin,
        body: {
          skuId,
          title: skuId,
          priceCents: 99_900,
          merchantId: 'shop',
          channel: 'self',
          warehouseId: 'wh-east',
          stock,
          deduction: 'placement',
          ...(flashSale
            ? { flashSale: { priceCents: 49_900, startsAt: new Date(now - 3600_000).toISOString(), endsAt: new Date(now + 3600_000).toISOString(), perUserLimit: 1 } }
            : {}),
        },
      });
      expect(created.status).toBe(201);
    };
    const checkout = (buyer: string, skuId: string) =>
      api.request('POST', '/v1/orders', {
        token: signToken(env.config.AUTH_JWT_SECRET, { sub: buyer, role: 'buyer' }),
        body: { items: [{ skuId, qty: 1 }], address: buyerAddress },
        headers: { 'idempotency-key': `${buyer}-${skuId}` },
      });

    // A coupon for the first 100 orders, running: its uses and limit are exported
    const firstHundred = { code: 'FIRST-100', kind: 'fixed', offCents: 300, minSpendCents: 0, perBuyerLimit: 1, totalLimit: 100, startsAt: new Date(now - 3600_000).toISOString(), endsAt: new Date(now + 3600_000).toISOString() };
    expect((await api.request('POST', '/v1/admin/coupons', { token: admin, body: firstHundred })).status).toBe(201);

    // A webhook whose receiver is gone: its deliveries fail, and are counted per webhook
    expect((await api.request('POST', '/v1/admin/webhooks', { token: admin, body: { url: 'http://127.0.0.1:9/gone', description: 'a receiver that went away' } })).status).toBe(201);

    // One order before the sale: prom-client creates a labelled series at its first event,
    // and rate() cannot see an increase that happened before a series' first sample.
    await createSku('WARM-UP', 5, false);
    const earlyOrder = await checkout('early-bird', 'WARM-UP');
    expect(earlyOrder.status).toBe(202);

    // An order imported as shipped, which its channel then reports cancelled there: a conflict, counted per channel.
    const imported = (status: string) => ({
      channel: 'partner',
      orders: [
        {
          externalOrderId: 'P-1',
          userId: 'partner-buyer',
          placedAt: new Date(now - 60_000).toISOString(),
          status,
          items: [{ skuId: 'WARM-UP', title: 'WARM-UP', merchantId: 'shop', warehouseId: 'wh-east', qty: 1, unitPriceCents: 99_900 }],
          shippingCents: 0,
          address: buyerAddress,
        },
      ],
    });
    expect((await api.request('POST', '/v1/admin/orders/import', { token: admin, body: imported('SHIPPED') })).status).toBe(200);
    const conflicting = await api.request('POST', '/v1/admin/orders/import', { token: admin, body: imported('CANCELLED') });
    expect((conflicting.body as { results: Array<{ outcome: string }> }).results[0]?.outcome).toBe('conflict');
    // (its job's duration too: it is observed when the job ends, which a writer batch can hold until the sale's orders come;
    // and its request's, observed once the answer is sent: a scrape between the two saw the count alone, the sale then came
    // in the latency's first sample, and the latency panels read no increase)
    const firstOrderScraped = [
      'count(checkouts_total{outcome="accepted"}) > 0',
      'count(http_request_duration_seconds_count{method="POST", route="/v1/orders"}) > 0',
      'count(job_wait_seconds_count{queue="orders"}) > 0',
      'count(job_duration_seconds_count{queue="orders"}) > 0',
    ].join(' and ');
    await waitFor(() => scraped(firstOrderScraped), { what: 'Prometheus to scrape the first order', intervalMs: 250 });

    // A flash sale: 60 buyers for 30 units, so there are sales, sell-outs and a rejection reason.
    await createSku(HOT_SKU, STOCK, true);
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => checkout(`buyer-${i}`, HOT_SKU)));
    expect(answers.filter((answer) => answer.status === 202)).toHaveLength(STOCK);

    // An order that Redis sells but MySQL has never heard of cannot be written: a dead letter.
    const inventory = new Inventory(env.redis, env.config.REDIS_KEY_PREFIX, checkoutTimeoutsOf(env.config));
    await inventory.initSku({ skuId: 'ORPHAN', available: 5, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 });
    expect((await checkout('buyer-orphan', 'ORPHAN')).status).toBe(202);

    // A SKU whose counters, and flash sale, in Redis are moved by hand: only a SKU that drifts has drift series, which the drift alerts read.
    await createSku(DRIFTING_SKU, 10, false);
    const driftingCounters = inventory.keys.sku(inventory.keys.bucketGroup(0), DRIFTING_SKU);
    await env.redis.hincrby(driftingCounters, 'available', 2);
    await env.redis.hincrby(driftingCounters, 'reserved', 1);
    await env.redis.hset(driftingCounters, { saleStartsAt: String(Date.now() + 3_600_000), saleEndsAt: String(Date.now() + 7_200_000), perUserLimit: '1' });
    const driftMadeAt = Date.now() / 1000;

    // The early bird pays while the payment system is away: its payment request waits, a failed call.
    const earlyBird = signToken(env.config.AUTH_JWT_SECRET, { sub: 'early-bird', role: 'buyer' });
    const earlyOrderId = (earlyOrder.body as { orderId: string }).orderId;
    await waitFor(async () => ((await api.request('GET', `/v1/orders/${earlyOrderId}`, { token: earlyBird })).body as { status: string }).status === 'PENDING_PAYMENT', {
      what: 'the early order to be payable',
    });
    expect((await api.request('POST', `/v1/orders/${earlyOrderId}/pay`, { token: earlyBird, body: { method: 'card' } })).status).toBe(202);

    // A callback that fails its signature (a sender with another secret): the callback routes have series.
    expect((await api.request('POST', '/v1/callbacks/payment', { body: { orderId: earlyOrderId } })).status).toBe(401);

    // Prometheus has seen it all once the orders are written, have expired, the orphan is
    // dead-lettered, the payment system was called and every worker exports a stock check
    // finished after the sale and the drift made by hand, with that drift.
    await waitFor(
      async () =>
        (await scraped(`sum(orders_persisted_total) >= ${STOCK + 1}`)) &&
        (await scraped('sum(order_transitions_total{to="EXPIRED"}) > 0')) &&
        (await scraped('sum(job_failures_total{final="true"}) > 0')) &&
        (await scraped('sum(external_calls_total{system="payment"}) > 0')) &&
        (await scraped(`min(stock_reconcile_last_success_timestamp_seconds) > ${driftMadeAt}`)) &&
        (await scraped(`count(stock_drift_units{sku="${DRIFTING_SKU}"}) > 0 and count(stock_counter_drift_units{sku="${DRIFTING_SKU}"}) > 0`)) &&
        (await scraped(`count(flash_sale_rules_drift{sku="${DRIFTING_SKU}"}) > 0`)) &&
        (await scraped('sum(webhook_deliveries_total{outcome="failed"}) > 0')),
      { what: 'Prometheus to scrape persisted, expired and dead-lettered orders, a payment call, a stock check with the drift made by hand and a failed webhook delivery', timeoutMs: 45_000, intervalMs: 500 },
    );
    // and a few scrapes more, so every rate has two samples after the last event
    const scrapesSoFar = Number((await query('min(count_over_time(up[1m]))')).data!.result[0]!.value[1]);
    await waitFor(() => scraped(`min(count_over_time(up[1m])) >= ${scrapesSoFar + 3}`), { what: 'three more scrapes', intervalMs: 250 });
  }, 120_000);

  afterAll(async () => {
    await prometheusApi?.close();
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await alertmanager?.stop();
    await Promise.all(workers.map((worker) => worker.stop()));
    await api?.close();
    await env?.cleanup();
  }, 60_000);

  it.each(queriesOf('expr'))('$where shows data', async ({ query: expr }) => {
    const result = await query(asPrometheusSees(expr));
    expect(result.error, expr).toBeUndefined();
    expect(result.status).toBe('success');
    expect(hasFiniteValue(result), `no data for ${expr}`).toBe(true);
  });

  it.each(alertRules.map((rule) => ({ alert: rule.alert, expr: rule.expr })))('alert $alert evaluates, and every series it reads exists', async ({ expr }) => {
    const result = await query(expr);
    expect(result.error, expr).toBeUndefined();
    expect(result.status).toBe('success');
    for (const selector of selectorsOf(expr)) {
      expect((await query(selector)).data?.result.length ?? 0, `no series for ${selector}`).toBeGreaterThan(0);
    }
  });

  it('hands its alerts to Alertmanager: the Watchdog, always firing, is there', async () => {
    const alertmanagerApi = httpClient(alertmanager.url, 1);
    try {
      await waitFor(
        async () => ((await alertmanagerApi.request('GET', '/api/v2/alerts?filter=alertname%3D%22Watchdog%22')).body as Array<{ labels: { alertname: string } }>).length === 1,
        { what: 'the Watchdog in Alertmanager', intervalMs: 250 },
      );
    } finally {
      await alertmanagerApi.close();
    }
  });

  it('shows the remaining stock of the hot SKU that the api reports, once the queue is drained', async () => {
    const [stockPanel] = queriesOf('rawSql');
    expect(stockPanel?.where).toBe('Flash sale / Remaining stock of the hot SKUs');
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    // expired orders give their units back, in Redis and in the ledger: wait until both agree
    await waitFor(
      async () => {
        const { rows } = await sql.raw<{ sku: string; available: string | number }>(stockPanel!.query).execute(env.db);
        const shown = rows.find((row) => row.sku === HOT_SKU);
        const api_ = (await api.request('GET', `/v1/admin/skus/${HOT_SKU}`, { token: admin })).body as { stock: { available: number } };
        return shown !== undefined && Number(shown.available) === api_.stock.available;
      },
      { what: 'the stock panel to match the api', timeoutMs: 20_000, intervalMs: 250 },
    );
  });
});
