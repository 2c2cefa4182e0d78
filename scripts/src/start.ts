import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { issueToken } from '@orders/api';
import { loadConfig, serviceNodeOptions } from '@orders/config';
import { DEMO_BUYER, seedDemoCatalog } from './demo-catalog.js';
import { checkServices } from './preflight.js';
import { runCommand } from './run-command.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The processes of the whole system on one machine; each is what compose runs as its own
 * container. One worker serves every queue (config/default.json) unless WORKER_QUEUES says otherwise.
 */
const APPS = ['payment-sim', 'warehouse-sim', 'api', 'worker'];

// run from its TypeScript source (through tsx, as the tests do), it starts the apps from theirs, with the same loader flags
const fromSource = import.meta.url.endsWith('.ts');
const entryOf = (app: string) => (fromSource ? [...process.execArgv, `apps/${app}/src/main.ts`] : [`apps/${app}/dist/main.js`]);

runCommand(async () => {
  const config = loadConfig();
  await checkServices(config);
  const created = await seedDemoCatalog(config);
  if (created.length > 0) console.log(`Seeded demo catalog: ${created.join(', ')}`);

  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`;
  // one machine: unless told otherwise, the worker calls the simulators on their ports and they call back the api on its own
  const peerUrls = {
    PAYMENT_URL: process.env.PAYMENT_URL ?? `http://127.0.0.1:${config.PAYMENT_SIM_PORT}`,
    WAREHOUSE_URL: process.env.WAREHOUSE_URL ?? `http://127.0.0.1:${config.WAREHOUSE_SIM_PORT}`,
    CALLBACK_BASE_URL: process.env.CALLBACK_BASE_URL ?? url,
  };
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    setTimeout(() => process.exit(code), config.SHUTDOWN_GRACE_MS + 1000).unref();
    Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))))).then(() =>
      process.exit(code),
    );
  };
  for (const app of APPS) {
    const child = spawn(process.execPath, entryOf(app), {
      cwd: root,
      // one machine: no load balancer to leave before the api stops (SHUTDOWN_DRAIN_DELAY_MS)
      env: { SHUTDOWN_DRAIN_DELAY_MS: '0', ...process.env, ...peerUrls, MIGRATE_ON_START: 'false', NODE_OPTIONS: serviceNodeOptions(process.env.NODE_OPTIONS) },
      stdio: 'inherit',
    });
    child.on('exit', (code) => {
      if (!stopping) {
        console.error(`${app} exited (code ${code}); stopping the others`);
        stopAll(code || 1);
      }
    });
    children.push(child);
  }
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  for (let attempt = 0; attempt < 100; attempt++) {
    const ready = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const secret = config.AUTH_JWT_SECRET;
  console.log(`
Order system running at ${url}   (API docs: ${url}/docs, metrics: ${url}/metrics)
Console for merchants and operators: ${url}/console (sign in with the merchant or admin token below)
Simulators: payment ${peerUrls.PAYMENT_URL}, warehouse ${peerUrls.WAREHOUSE_URL} (faults: PUT /__admin/faults)
Demo tokens (24 h; more with: npm run token -- <buyer|merchant|admin> <id>):
  buyer    ${issueToken(secret, DEMO_BUYER, 'buyer')}
  merchant ${issueToken(secret, 'shop', 'merchant')}
  admin    ${issueToken(secret, 'ops', 'admin')}
Try: curl -X POST ${url}/v1/orders -H "authorization: Bearer <buyer token>" -H "idempotency-key: demo-1" \\
  -H "content-type: application/json" -d '{"items":[{"skuId":"PHONE-X-FLASH","qty":1}],"address":{"name":"Ada","phone":"+44 20 7946 0000","line1":"1 Sale St","city":"London","postalCode":"N1 9GU","country":"GB"}}'
Stop with Ctrl-C.`);
  await new Promise(() => {});
});
