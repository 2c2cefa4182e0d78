import { loadConfig } from '@orders/config';
import { DEMO_SHOP, demoShopSaid, refuseDemoInProduction } from './demo-shop.js';
import { runCommand } from './run-command.js';

const USAGE = `usage: npm run seed [-- ${DEMO_SHOP}]
Loads the demo shop into MySQL and Redis (creating the database and migrating it when needed):
its SKUs, a promotion and a coupon open to every buyer for a year (DEMO-SPEND-100, WELCOME15),
and the demo buyer as a gold member. What exists already is left as it is.
For a demo or test shop only: never run it against a shop that sells. With NODE_ENV=production
it runs only when told the stack is a demo shop (${DEMO_SHOP}).`;

runCommand({ usage: USAGE, parse: demoShopSaid, flags: [DEMO_SHOP] }, async (demoShop) => {
  const config = loadConfig();
  refuseDemoInProduction(config, demoShop);
  const [{ checkServices }, { seedDemoCatalog }] = await Promise.all([import('./preflight.js'), import('./demo-catalog.js')]);
  await checkServices(config);
  const created = await seedDemoCatalog(config);
  console.log(created.length > 0 ? `Seeded: ${created.join(', ')}` : 'Demo catalog and pricing already present; nothing changed.');
});
