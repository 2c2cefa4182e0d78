import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { httpClient, waitFor } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { alertmanagerBinary, amtoolInstalled, renderAlertmanagerConfig, startAlertmanager, type RunningAlertmanager } from './support/alertmanager.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const alertRules = (
  parse(readFileSync(path.join(root, 'config/prometheus/alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; labels: { severity: string } }> }> }
).groups.flatMap((group) => group.rules);
const SKIP_REASON = 'apt-get install prometheus-alertmanager';

const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'orders-alert-routes-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const EVERY_RECEIVER = {
  ALERT_PAGE_WEBHOOK_URL: 'https://pager.example/hook',
  ALERT_NOTIFY_WEBHOOK_URL: 'https://chat.example/hook',
  ALERT_HEARTBEAT_WEBHOOK_URL: 'https://heartbeat.example/ping',
};

describe('where the alerts go (config/alertmanager)', () => {
  it.skipIf(!amtoolInstalled)(`pages for every critical alert, tells the team's channel of every warning, and sends the Watchdog to the heartbeat (${SKIP_REASON} runs it)`, async () => {
    const config = path.join(scratch(), 'alertmanager.yml');
    const { stderr } = await renderAlertmanagerConfig(EVERY_RECEIVER, config);
    expect(stderr).toBe('');
    const receiversOf = async (labels: Record<string, string>) =>
      (await run('amtool', ['config', 'routes', 'test', `--config.file=${config}`, ...Object.entries(labels).map(([name, value]) => `${name}=${value}`)])).stdout.trim();
    const expected = (rule: (typeof alertRules)[number]) =>
      rule.alert === 'Watchdog'
        ? 'heartbeat'
        : // the pager may be what fails: the team hears of it too
          rule.alert === 'AlertNotificationsFailing'
          ? 'notify,page'
          : { critical: 'page', warning: 'notify' }[rule.labels.severity];
    const routed = await Promise.all(alertRules.map(async (rule) => [rule.alert, await receiversOf({ alertname: rule.alert, ...rule.labels })]));
    expect(Object.fromEntries(routed)).toEqual(Object.fromEntries(alertRules.map((rule) => [rule.alert, expected(rule)])));
    // every alert is one or the other: none falls through to a default nobody chose
    expect(new Set(alertRules.filter((rule) => rule.alert !== 'Watchdog').map((rule) => rule.labels.severity))).toEqual(new Set(['critical', 'warning']));
  });

  it.skipIf(!amtoolInstalled)('writes a configuration that holds every alert in its UI when no URL is given, and says at start which receivers send nothing', async () => {
    const config = path.join(scratch(), 'alertmanager.yml');
    const { stderr } = await renderAlertmanagerConfig({ ALERT_PAGE_WEBHOOK_URL: 'http://pager.internal:8080/hook' }, config);
    expect(stderr.trim().split('\n')).toEqual([
      "render-config.sh: ALERT_NOTIFY_WEBHOOK_URL is not set: the notify receiver sends nothing (its alerts show in Alertmanager's UI only)",
      "render-config.sh: ALERT_HEARTBEAT_WEBHOOK_URL is not set: the heartbeat receiver sends nothing (its alerts show in Alertmanager's UI only)",
    ]);
    const { receivers } = parse(readFileSync(config, 'utf8')) as { receivers: Array<{ name: string; webhook_configs?: Array<{ url: string }> }> };
    expect(receivers).toEqual([
      { name: 'page', webhook_configs: [{ url: 'http://pager.internal:8080/hook', send_resolved: true }] },
      { name: 'notify' },
      { name: 'heartbeat' },
    ]);
  });

  it.each([
    ['a space', 'https://pager.example/a b', 'ALERT_PAGE_WEBHOOK_URL holds a quote, a backslash or a space: give the URL percent-encoded'],
    ['a quote', 'https://chat.example/"x', 'ALERT_PAGE_WEBHOOK_URL holds a quote, a backslash or a space: give the URL percent-encoded'],
    ['no scheme', 'pager.example/hook', 'ALERT_PAGE_WEBHOOK_URL is not an http:// or https:// URL: pager.example/hook'],
    ['another scheme', 'ftp://pager.example/hook', 'ALERT_PAGE_WEBHOOK_URL is not an http:// or https:// URL: ftp://pager.example/hook'],
  ])('refuses a URL with %s, naming it, rather than start routing alerts nowhere', async (_, url, message) => {
    const refused = await renderAlertmanagerConfig({ ALERT_PAGE_WEBHOOK_URL: url }, path.join(scratch(), 'alertmanager.yml')).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr.trim()).toBe(`render-config.sh: ${message}`);
  });
});

describe.skipIf(!alertmanagerBinary)(`a live Alertmanager on that configuration (${SKIP_REASON} runs it)`, () => {
  let alertmanager: RunningAlertmanager;
  let receiver: Server;
  /** what each webhook got: its path, the receiver Alertmanager names, and the alerts' names and statuses */
  const received: Array<{ path: string; receiver: string; alerts: Array<{ alertname: string; status: string; summary?: string }> }> = [];

  beforeAll(async () => {
    receiver = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const message = JSON.parse(body) as { receiver: string; alerts: Array<{ status: string; labels: { alertname: string }; annotations: { summary?: string } }> };
        received.push({
          path: request.url ?? '',
          receiver: message.receiver,
          alerts: message.alerts.map((alert) => ({ alertname: alert.labels.alertname, status: alert.status, summary: alert.annotations.summary })),
        });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    alertmanager = await startAlertmanager({ ALERT_PAGE_WEBHOOK_URL: `${base}/page`, ALERT_NOTIFY_WEBHOOK_URL: `${base}/notify`, ALERT_HEARTBEAT_WEBHOOK_URL: `${base}/heartbeat` });
  });
  afterAll(async () => {
    await alertmanager?.stop();
    receiver?.close();
  });

  it("sends the Watchdog to the heartbeat at once, a critical alert to the pager within seconds, a warning to the team's channel, and nothing a critical one beside it says already", { timeout: 90_000 }, async () => {
    const api = httpClient(alertmanager.url, 1);
    try {
      // as Prometheus hands them over (POST /api/v2/alerts)
      const posted = await api.request('POST', '/api/v2/alerts', {
        body: [
          { labels: { alertname: 'Watchdog', severity: 'none' }, annotations: { summary: 'Alerting works end to end (always firing)' } },
          { labels: { alertname: 'OrdersNotPersisted', severity: 'critical' }, annotations: { summary: 'Accepted orders are not reaching MySQL' } },
          { labels: { alertname: 'ApiSaturated', severity: 'warning', instance: 'api-1:3000' }, annotations: { summary: 'api api-1:3000: event loop busy 95% of the time' } },
          // every worker gone: one page, not one per stage and replica
          { labels: { alertname: 'NoWorkerRunning', severity: 'critical' }, annotations: { summary: 'No worker is running' } },
          { labels: { alertname: 'WorkerStageDown', severity: 'critical', worker_stage: 'orders' }, annotations: { summary: 'No worker of the orders stage is running' } },
          { labels: { alertname: 'WorkerMissing', severity: 'warning', worker_stage: 'orders', instance: 'w-1:9464' }, annotations: { summary: 'worker w-1:9464 does not answer scrapes' } },
        ],
      });
      expect(posted.status).toBe(200);
      const firing = (alertname: string, summary: string) => ({ alertname, status: 'firing', summary });
      // the warning waits its group's 30 s, for the alerts that come with it
      await waitFor(async () => received.length >= 4, { what: 'the webhooks', timeoutMs: 60_000, intervalMs: 500, explain: async () => JSON.stringify(received) });
      expect(received.sort((a, b) => a.path.localeCompare(b.path) || a.alerts[0]!.alertname.localeCompare(b.alerts[0]!.alertname))).toEqual([
        { path: '/heartbeat', receiver: 'heartbeat', alerts: [firing('Watchdog', 'Alerting works end to end (always firing)')] },
        { path: '/notify', receiver: 'notify', alerts: [firing('ApiSaturated', 'api api-1:3000: event loop busy 95% of the time')] },
        { path: '/page', receiver: 'page', alerts: [firing('NoWorkerRunning', 'No worker is running')] },
        { path: '/page', receiver: 'page', alerts: [firing('OrdersNotPersisted', 'Accepted orders are not reaching MySQL')] },
      ]);
      // the alerts held back say by which
      const held = (await api.request('GET', '/api/v2/alerts?filter=alertname%3D~%22WorkerStageDown%7CWorkerMissing%22')).body as Array<{ labels: { alertname: string }; status: { state: string; inhibitedBy: string[] } }>;
      expect(held.map((alert) => [alert.labels.alertname, alert.status.state, alert.status.inhibitedBy.length > 0]).sort()).toEqual([
        ['WorkerMissing', 'suppressed', true],
        ['WorkerStageDown', 'suppressed', true],
      ]);
    } finally {
      await api.close();
    }
  });
});
