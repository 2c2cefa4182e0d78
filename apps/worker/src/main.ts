import { ConfigError, loadConfig } from '@orders/config';
import { awaitSchema, migrateDatabase } from '@orders/persistence';
import { startMetricsServer } from './metrics-server.js';
import { connectWorker, startWorkers } from './worker-app.js';
import { workerLog } from './worker-log.js';

/** The worker process: serves the queues named in WORKER_QUEUES, exposes /metrics. */
async function main() {
  const config = loadConfig();
  const log = workerLog(config.LOG_LEVEL);
  if (process.env.MIGRATE_ON_START !== 'false') await migrateDatabase(config.MYSQL_URL, { stillMigrating: (message) => log.warn(message) });
  else await awaitSchema(config.MYSQL_URL, { waiting: (pending) => log.warn({ pending }, 'waiting for the migrations this build needs: no job is taken until they have run (the deploy\'s migrate step)') });
  const deps = connectWorker(config, log);
  const running = startWorkers(deps);
  const server = await startMetricsServer(deps.metrics, config.WORKER_METRICS_PORT, config.HOST, () => running.ready());
  log.info({ queues: config.WORKER_QUEUES, metricsPort: config.WORKER_METRICS_PORT }, 'worker started');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down: finishing active jobs');
    const force = setTimeout(() => {
      // a job still active is run again by another worker once its lock lapses (WORKER_LOCK_DURATION_MS)
      log.error({ graceMs: config.SHUTDOWN_GRACE_MS, waitingFor: running.waitingFor() }, 'shutdown grace period over: exiting before everything closed');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS).unref();
    server.close();
    await running.close();
    clearTimeout(force);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else console.error(`worker could not start: ${(error as Error).message}`);
  process.exit(1);
});
