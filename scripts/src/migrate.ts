import { loadConfig } from '@orders/config';
import { runCommand } from './run-command.js';

const USAGE = `usage: npm run migrate
Creates the MySQL database when it is missing and applies the migrations it has not had yet.`;

runCommand({ usage: USAGE }, async () => {
  const config = loadConfig();
  const { migrateDatabase } = await import('@orders/persistence');
  // migrations touch MySQL alone: a Redis still starting does not hold them up (migrateDatabase says when MySQL is away)
  const { results } = await migrateDatabase(config.MYSQL_URL, { stillMigrating: (message) => console.log(message) });
  for (const result of results ?? []) console.log(`${result.status}: ${result.migrationName}`);
  if (!results?.length) console.log('Database is up to date.');
});
