import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from '@orders/config';
import { serveClusterMetrics } from '@orders/metrics';
import { buildApp } from './app.js';
import { connectApi } from './connect.js';

/**
 * API_PROCESSES > 1: this process migrates once, then forks that many api processes that
 * share the port (node:cluster), restarts one that dies, and passes SIGTERM/SIGINT on
 * for a graceful shutdown of all. The api is stateless; only a scrape of /metrics, which
 * reaches one process, is answered for all of them, gathered by this one.
 */
async function supervise(config: Config) {
  if (process.env.MIGRATE_ON_START !== 'false') await (await connectApi(config, { migrate: true })).close();
  let closing = false;
  const fork = () => cluster.fork({ MIGRATE_ON_START: 'false' });
  serveClusterMetrics();
  for (let i = 0; i < config.API_PROCESSES; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (closing) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    console.error(`api process ${worker.process.pid} exited (${signal ?? code}); starting another`);
    setTimeout(fork, 1000).unref();
  });
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS + 1000).unref();
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The api process: config, connections, server, graceful shutdown. */
async function main() {
  const config = loadConfig();
  if (config.API_PROCESSES > 1 && cluster.isPrimary) return supervise(config);
  const deps = await connectApi(config, { migrate: process.env.MIGRATE_ON_START !== 'false' });
  if (cluster.isWorker) deps.metrics.shareWithCluster();
  const app = await buildApp(deps);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    const started = Date.now();
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
