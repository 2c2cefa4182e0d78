import cluster from 'node:cluster';
import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError, loadConfig, type Config } from '@orders/config';
import { serveClusterMetrics } from '@orders/metrics';
import { buildApp } from './app.js';
import { awaitMigrations, connectApi } from './connect.js';

/**
 * API_PROCESSES > 1: this process migrates once, then forks that many api processes that
 * share the port (node:cluster), restarts one that dies, and passes SIGTERM/SIGINT on
 * for a graceful shutdown of all (a SIGINT after a SIGTERM too: it cuts the drain delay short). The api is stateless; only a scrape of /metrics, which
 * reaches one process, is answered for all of them, gathered by this one. It exits non-zero
 * when a process did not shut down cleanly (its grace ran out, or it had to be killed).
 */
async function supervise(config: Config) {
  if (process.env.MIGRATE_ON_START !== 'false') await (await connectApi(config, { migrate: true })).close();
  else await awaitMigrations(config);
  let closingOn: NodeJS.Signals | undefined;
  let unclean = false;
  let forceExit: NodeJS.Timeout | undefined;
  const restarts = new Set<NodeJS.Timeout>();
  const fork = () => cluster.fork({ MIGRATE_ON_START: 'false' });
  const running = () => Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
  const instanceMetrics = serveClusterMetrics({ app: 'api' });
  for (let i = 0; i < config.API_PROCESSES; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (closingOn) {
      if (code !== 0) unclean = true;
      if (running().length === 0) process.exit(unclean ? 1 : 0);
      return;
    }
    console.error(`api process ${worker.process.pid} exited (${signal ?? code}); starting another`);
    instanceMetrics.processRestarted();
    const restart = setTimeout(() => (restarts.delete(restart), fork()), 1000);
    restarts.add(restart);
  });
  const killAllAfter = (ms: number) => {
    clearTimeout(forceExit);
    forceExit = setTimeout(() => {
      for (const worker of running()) worker.process.kill('SIGKILL');
      process.exit(1);
    }, ms).unref();
  };
  const shutdown = (signal: NodeJS.Signals) => {
    if (closingOn) {
      // Ctrl-C during SIGTERM's drain delay: the processes skip what is left of it
      if (closingOn === 'SIGTERM' && signal === 'SIGINT') {
        closingOn = signal;
        killAllAfter(config.SHUTDOWN_GRACE_MS + 1000);
        for (const worker of running()) worker.process.kill(signal);
      }
      return;
    }
    closingOn = signal;
    // a process started now would never be told to stop
    for (const restart of restarts) clearTimeout(restart);
    const drainDelayMs = signal === 'SIGTERM' ? config.SHUTDOWN_DRAIN_DELAY_MS : 0;
    killAllAfter(drainDelayMs + config.SHUTDOWN_GRACE_MS + 1000);
    if (running().length === 0) process.exit(0);
    for (const worker of running()) worker.process.kill(signal);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The api process: config, connections, server, graceful shutdown. */
async function main() {
  const config = loadConfig();
  if (config.API_PROCESSES > 1 && cluster.isPrimary) return supervise(config);
  const migrate = process.env.MIGRATE_ON_START !== 'false';
  // a process its primary forked after migrating need not look
  const deps = await connectApi(config, { migrate, awaitSchema: !migrate && cluster.isPrimary });
  if (cluster.isWorker) deps.metrics.shareWithCluster();
  const app = await buildApp(deps);
  deps.logRedisOutages(app.log);
  let closing = false;
  const skipDrainDelay = new AbortController();
  const shutdown = async (signal: NodeJS.Signals) => {
    if (closing) {
      // Ctrl-C during SIGTERM's drain delay: whoever presses it wants the process gone now
      if (signal === 'SIGINT') skipDrainDelay.abort();
      return;
    }
    closing = true;
    const started = Date.now();
    // SIGTERM is how an orchestrator stops a replica: its load balancer still sends requests until
    // a readiness probe fails, and those would meet a closed port. Ctrl-C (SIGINT) stops at once.
    const drainDelayMs = signal === 'SIGTERM' ? config.SHUTDOWN_DRAIN_DELAY_MS : 0;
    if (drainDelayMs > 0) {
      app.leaveLoadBalancer();
      app.log.info({ signal, drainDelayMs }, 'shutting down: readiness answers 503 while the load balancer takes this instance out; requests are still served (SIGINT to skip)');
      await delay(drainDelayMs, undefined, { signal: skipDrainDelay.signal }).catch(() => app.log.info({ msLeft: started + drainDelayMs - Date.now() }, 'SIGINT: the rest of the drain delay skipped'));
    }
    app.log.info({ signal }, 'shutting down: no new requests, draining in-flight ones');
    const force = setTimeout(() => {
      app.log.error({ graceMs: config.SHUTDOWN_GRACE_MS }, 'shutdown grace period over: exiting with requests still in flight');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS).unref();
    await app.close();
    app.log.info({ ms: Date.now() - started }, 'in-flight requests drained; closing connections');
    await deps.close();
    clearTimeout(force);
    app.log.info({ ms: Date.now() - started }, 'shut down');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await app.listen({ host: config.HOST, port: config.PORT });
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(`api could not start: ${(error as Error).message}`);
  process.exit(1);
});
