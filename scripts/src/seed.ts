import { loadConfig } from '@orders/config';
import { seedDemoCatalog } from './demo-catalog.js';
import { checkServices } from './preflight.js';
import { runCommand } from './run-command.js';

runCommand(async () => {
  const config = loadConfig();
  await checkServices(config);
  const created = await seedDemoCatalog(config);
  console.log(created.length > 0 ? `Seeded: ${created.join(', ')}` : 'Demo catalog and pricing already present; nothing changed.');
});
