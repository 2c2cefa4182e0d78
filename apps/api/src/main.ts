import { ConfigError, loadConfig } from '@orders/config';
import { buildApp } from './app.js';
import { connectApi } from './connect.js';

/** The api process: config, connections, server, graceful shutdown. */
async function main() {
  const config = loadConfig();
  const deps = await connectApi(config, { migrate: process.env.MIGRATE_ON_START !== 'false' });
  const app = await buildApp(deps);
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: no new requests, draining in-flight ones');
    const force = setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS).unref();
    await app.close();
    await deps.close();
    clearTimeout(force);
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
