import { ConfigError, loadConfig, type Config } from '@orders/config';
import type { FastifyInstance } from 'fastify';

/**
 * A simulator as its own process (npm start runs both; so can docker compose): config,
 * listen, and a graceful close on SIGTERM/SIGINT that lets callbacks under way finish.
 */
export function runSimulator(name: string, build: (config: Config) => Promise<FastifyInstance>, port: (config: Config) => number): void {
  const main = async () => {
    const config = loadConfig();
    const app = await build(config);
    const shutdown = async () => {
      const force = setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS).unref();
      await app.close();
      clearTimeout(force);
      process.exit(0);
    };
    process.on('SIGTERM', () => void shutdown());
    process.on('SIGINT', () => void shutdown());
    await app.listen({ host: config.HOST, port: port(config) });
    app.log.warn(`${name} listening on ${config.HOST}:${port(config)}`);
  };
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) console.error(error.message);
    else console.error(`${name} could not start: ${(error as Error).message}`);
    process.exit(1);
  });
}
