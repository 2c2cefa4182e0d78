import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, httpClient, waitFor } from '@orders/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

/** config/alertmanager/render-config.sh, as the compose service runs it at each start. */
export const RENDER_CONFIG = path.join(root, 'config/alertmanager/render-config.sh');

/** The receivers' URLs, as the compose service's environment names them. */
export interface AlertReceivers {
  ALERT_PAGE_WEBHOOK_URL?: string;
  ALERT_NOTIFY_WEBHOOK_URL?: string;
  ALERT_HEARTBEAT_WEBHOOK_URL?: string;
}

/** Runs render-config.sh with `receivers` as its whole environment beside PATH: what it wrote, what it said. */
export async function renderAlertmanagerConfig(receivers: AlertReceivers, out: string): Promise<{ stderr: string }> {
  const { stderr } = await run('sh', [RENDER_CONFIG, out], { env: { PATH: process.env.PATH ?? '', ...receivers } });
  return { stderr };
}

/** Debian names its binary prometheus-alertmanager (apt-get install prometheus-alertmanager); the image, alertmanager. */
export const alertmanagerBinary = await ['prometheus-alertmanager', 'alertmanager'].reduce<Promise<string | undefined>>(
  async (found, binary) =>
    (await found) ??
    run(binary, ['--version']).then(
      () => binary,
      () => undefined,
    ),
  Promise.resolve(undefined),
);

export const amtoolInstalled = await run('amtool', ['--version']).then(
  () => true,
  () => false,
);

export interface RunningAlertmanager {
  url: string;
  /** Host and port, as Prometheus's `alerting` and scrape targets name it. */
  address: string;
  stop(): Promise<void>;
}

/** Alertmanager on a free loopback port with the configuration render-config.sh writes for `receivers`, its state in a directory of its own. */
export async function startAlertmanager(receivers: AlertReceivers): Promise<RunningAlertmanager> {
  if (!alertmanagerBinary) throw new Error('Alertmanager is not installed (apt-get install prometheus-alertmanager)');
  const dir = mkdtempSync(path.join(tmpdir(), 'orders-alertmanager-'));
  const config = path.join(dir, 'alertmanager.yml');
  await renderAlertmanagerConfig(receivers, config);
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawn(alertmanagerBinary, [`--config.file=${config}`, `--storage.path=${dir}`, `--web.listen-address=${address}`, '--cluster.listen-address=', '--log.level=warn'], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const probe = httpClient(`http://${address}`, 1);
  try {
    await waitFor(async () => (await probe.request('GET', '/-/ready').catch(() => ({ status: 0 }))).status === 200, { what: 'Alertmanager to be ready' });
  } catch (error) {
    await stop();
    throw error;
  } finally {
    await probe.close();
  }
  return { url: `http://${address}`, address, stop };
}
