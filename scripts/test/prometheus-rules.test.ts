import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const prometheusDir = path.join(root, 'config/prometheus');
const run = promisify(execFile);

const promtool = await run('promtool', ['--version']).then(
  () => true,
  () => false,
);
const SKIP_REASON = 'promtool is not installed (apt-get install prometheus)';

const alertNames = (
  parse(readFileSync(path.join(prometheusDir, 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }
).groups.flatMap((group) => group.rules.map((rule) => rule.alert));

describe('Prometheus configuration and alert rules', () => {
  it('alerts on everything an operator of a flash sale must hear about', () => {
    expect(alertNames).toEqual(
      expect.arrayContaining([
        'CheckoutErrorRateHigh',
        'CheckoutLatencyP99High',
        'QueueLagGrowing',
        'DeadLettersWaiting',
        'CircuitBreakerOpen',
        'StockDriftFound',
        'WorkerMissing',
        'NoWorkerRunning',
        'RequestBudgetsUnchecked',
        'StrandedOrdersRecovered',
        'AcceptedOrdersLost',
      ]),
    );
  });

  it.skipIf(!promtool)(`passes promtool check config (${SKIP_REASON} skips it)`, async () => {
    const { stdout } = await run('promtool', ['check', 'config', path.join(prometheusDir, 'prometheus.yml')]);
    expect(stdout).toContain('is valid prometheus config file syntax');
  });

  it.skipIf(!promtool)('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', path.join(prometheusDir, 'alerts.yml')]);
    expect(stdout).toContain(`SUCCESS: ${alertNames.length} rules found`);
  });

  it.skipIf(!promtool)('fires each alert on the series that should wake an operator, and stays quiet on the ones that should not', async () => {
    // config/prometheus/alerts.test.yml: one case per operator's rule, e.g. a sold-out sale is not an error
    const { stdout } = await run('promtool', ['test', 'rules', path.join(prometheusDir, 'alerts.test.yml')], { cwd: prometheusDir });
    expect(stdout).toContain('SUCCESS');
  });
});
