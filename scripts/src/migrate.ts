import { loadConfig } from '@orders/config';
import { createDb, migrateToLatest } from '@orders/persistence';
import { checkServices } from './preflight.js';
import { runCommand } from './run-command.js';

const USAGE = `usage: npm run migrate
Creates the MySQL database when it is missing and applies the migrations it has not had yet.`;

runCommand({ usage: USAGE }, async () => {
  const config = loadConfig();
  // migrations touch MySQL alone: a Redis still starting does not hold them up
  await checkServices(config, { mysql: 'create-database' });
  const { db } = createDb(config.MYSQL_URL, 1);
  try {
    const { results } = await migrateToLatest(db);
    for (const result of results ?? []) console.log(`${result.status}: ${result.migrationName}`);
    if (!results?.length) console.log('Database is up to date.');
  } finally {
    await db.destroy();
  }
});
