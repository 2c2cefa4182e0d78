import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { issueToken, issuedTokenLifetimeMs, type TokenSigning } from '@orders/api/tokens';
import { appEntry, loadConfig, serviceNodeOptions, type Config } from '@orders/config';
import { DEMO_BUYER, DEMO_SHOP, demoShopSaid, refuseDemoInProduction } from './demo-shop.js';
import { runCommand } from './run-command.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The processes of the whole system on one machine; each is what compose runs as its own
 * container. One worker serves every queue (config/default.json) unless WORKER_QUEUES says otherwise.
 */
const APPS = ['payment-sim', 'warehouse-sim', 'api', 'worker'];

// run from its TypeScript source (through tsx, as the tests do), it starts the apps from theirs, with the same loader flags
const fromSource = import.meta.url.endsWith('.ts');
const entryOf = (app: string) => (fromSource ? [...process.execArgv, `apps/${app}/src/main.ts`] : [appEntry(app)]);

const USAGE = `usage: npm start [-- ${DEMO_SHOP}]
Runs the whole system on this machine: checks MySQL and Redis, migrates the database and seeds
the demo shop (as npm run seed does), starts the payment and warehouse simulators, the api and
a worker, and prints the URL and demo tokens once the api is ready. Stop with Ctrl-C.
With NODE_ENV=production it runs only when told the stack is a demo shop (${DEMO_SHOP}).`;

/** How long one readiness probe may take: an api whose MySQL hangs may not answer at all. */
const PROBE_TIMEOUT_MS = 2_000;
const PROBE_INTERVAL_MS = 200;

/** What /health/ready last said, or why it did not answer; null once it answered 200. */
async function notReadyBecause(url: string): Promise<string | null> {
  try {
    const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    return response.ok ? null : `it answered ${response.status} ${await response.text()}`;
  } catch (error) {
    // fetch's own message is "fetch failed"; its cause says why (ECONNREFUSED: nothing listens yet)
    const { message, cause } = error as Error & { cause?: { code?: string } };
    return `it did not answer (${cause?.code ?? message})`;
  }
}

function printBanner(url: string, peerUrls: { PAYMENT_URL: string; WAREHOUSE_URL: string }, signing: TokenSigning & { AUTH_JWT_MAX_LIFETIME_MS: number }): void {
  const lifetimeHours = issuedTokenLifetimeMs(signing) / 3_600_000;
  console.log(`
Order system running at ${url}   (API docs: ${url}/docs, metrics: ${url}/metrics)
Console for merchants and operators: ${url}/console (sign in with the merchant or admin token below)
Simulators: payment ${peerUrls.PAYMENT_URL}, warehouse ${peerUrls.WAREHOUSE_URL} (faults: PUT /__admin/faults)
Demo tokens (${Number(lifetimeHours.toFixed(2))} h; more with: npm run token -- <buyer|merchant|admin> <id>):
  buyer    ${issueToken(signing, DEMO_BUYER, 'buyer')}
  merchant ${issueToken(signing, 'shop', 'merchant')}
  admin    ${issueToken(signing, 'ops', 'admin')}
Try: curl -X POST ${url}/v1/orders -H "authorization: Bearer <buyer token>" -H "idempotency-key: demo-1" \\
  -H "content-type: application/json" -d '{"items":[{"skuId":"PHONE-X-FLASH","qty":1}],"address":{"name":"Ada","phone":"+44 20 7946 0000","line1":"1 Sale St","city":"London","postalCode":"N1 9GU","country":"GB"}}'
Stop with Ctrl-C.`);
}

/**
 * Each process listens on a port of its own: given one port twice, the second to start fails to
 * bind and takes the others down with it, the reason buried in its log. Said before anything starts.
 */
function refuseSharedPorts(config: Pick<Config, 'PORT' | 'PAYMENT_SIM_PORT' | 'WAREHOUSE_SIM_PORT' | 'WORKER_METRICS_PORT'>): void {
  const ports = Object.entries({ PORT: config.PORT, PAYMENT_SIM_PORT: config.PAYMENT_SIM_PORT, WAREHOUSE_SIM_PORT: config.WAREHOUSE_SIM_PORT, WORKER_METRICS_PORT: config.WORKER_METRICS_PORT });
  const shared = ports.filter(([, port]) => ports.filter(([, other]) => other === port).length > 1);
  if (shared.length > 0) {
    throw new Error(`${shared.map(([name, port]) => `${name}=${port}`).join(', ')}: the api, the worker's metrics and the two simulators each need a port of their own`);
  }
}

runCommand({ usage: USAGE, parse: demoShopSaid, flags: [DEMO_SHOP] }, async (demoShop) => {
  const config = loadConfig();
  refuseSharedPorts(config);
  refuseDemoInProduction(config, demoShop, ', its simulators would take the payments, and it would print an admin token signed with the shop’s secret');
  const [{ checkServices }, { seedDemoCatalog }] = await Promise.all([import('./preflight.js'), import('./demo-catalog.js')]);
  await checkServices(config);
  const created = await seedDemoCatalog(config);
  if (created.length > 0) console.log(`Seeded demo catalog: ${created.join(', ')}`);

  // the address the api and the simulators listen on (HOST), as a URL names it: every address's, loopback's
  const listening = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  const origin = (port: number) => `http://${listening.includes(':') ? `[${listening}]` : listening}:${port}`;
  const url = origin(config.PORT);
  // one machine: unless told otherwise, the worker calls the simulators on their ports and they call back the api on its own
  const peerUrls = {
    PAYMENT_URL: process.env.PAYMENT_URL ?? origin(config.PAYMENT_SIM_PORT),
    WAREHOUSE_URL: process.env.WAREHOUSE_URL ?? origin(config.WAREHOUSE_SIM_PORT),
    CALLBACK_BASE_URL: process.env.CALLBACK_BASE_URL ?? url,
  };
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    // as long as the api may take: its drain (0 here unless set, as below), then its grace period
    const apiDrainMs = process.env.SHUTDOWN_DRAIN_DELAY_MS === undefined ? 0 : config.SHUTDOWN_DRAIN_DELAY_MS;
    setTimeout(() => {
      // a process still draining past its grace is hung: killed, never left running without this one
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      process.exit(code);
    }, apiDrainMs + config.SHUTDOWN_GRACE_MS + 1000).unref();
    Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))))).then(() =>
      process.exit(code),
    );
  };
  // before the first app starts: a signal that came while they start would end this process alone, and leave them running
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
  for (const app of APPS) {
    const child = spawn(process.execPath, entryOf(app), {
      cwd: root,
      // one machine: no load balancer to leave before the api stops (SHUTDOWN_DRAIN_DELAY_MS)
      env: { SHUTDOWN_DRAIN_DELAY_MS: '0', ...process.env, ...peerUrls, MIGRATE_ON_START: 'false', NODE_OPTIONS: serviceNodeOptions(process.env.NODE_OPTIONS) },
      stdio: 'inherit',
    });
    // not started at all (its entry point missing, no memory to fork): the others stop, none left running alone
    child.on('error', (error) => {
      console.error(`${app} could not run (${error.message}); stopping the others`);
      stopAll(1);
    });
    child.on('exit', (code) => {
      if (!stopping) {
        console.error(`${app} exited (code ${code}); stopping the others`);
        stopAll(code || 1);
      }
    });
    children.push(child);
  }

  const givesUpAt = Date.now() + config.START_READY_TIMEOUT_MS;
  let notReady = await notReadyBecause(url);
  while (notReady !== null && !stopping && Date.now() < givesUpAt) {
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    notReady = await notReadyBecause(url);
  }
  // an app that exited meanwhile said so, and stopAll is taking the others down: no banner then
  if (!stopping && notReady === null) {
    printBanner(url, peerUrls, config);
  } else if (!stopping) {
    console.error(`The api did not become ready within ${config.START_READY_TIMEOUT_MS / 1000} s at ${url}/health/ready: ${notReady}. Stopping everything started.`);
    stopAll(1);
  }
  await new Promise(() => {});
});
