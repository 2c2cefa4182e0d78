import { loadConfig } from '@orders/config';
import { seedDemoCatalog } from './demo-catalog.js';
import { checkServices } from './preflight.js';
import { refuseArguments, runCommand } from './run-command.js';

const DEMO_SHOP = '--demo-shop';

const USAGE = `usage: npm run seed [-- ${DEMO_SHOP}]
Loads the demo shop into MySQL and Redis (creating the database and migrating it when needed):
its SKUs, a promotion and a coupon open to every buyer for a year (DEMO-SPEND-100, WELCOME15),
and the demo buyer as a gold member. What exists already is left as it is.
For a demo or test shop only: never run it against a shop that sells. With NODE_ENV=production
it runs only when told the stack is a demo shop (${DEMO_SHOP}).`;

function demoShopSaid(args: readonly string[]): boolean {
  refuseArguments(args.filter((arg) => arg !== DEMO_SHOP));
  return args.includes(DEMO_SHOP);
}

runCommand({ usage: USAGE, parse: demoShopSaid }, async (demoShop) => {
  const config = loadConfig();
  // a production stack is most likely a shop that sells: a store-wide discount and half-price phones are not for it
  if (config.NODE_ENV === 'production' && !demoShop) {
    throw new Error(`NODE_ENV is production: the demo catalog would open a store-wide discount (DEMO-SPEND-100, WELCOME15) and sell half-price phones there. For a demo stack, run it again with ${DEMO_SHOP}.`);
  }
  await checkServices(config);
  const created = await seedDemoCatalog(config);
  console.log(created.length > 0 ? `Seeded: ${created.join(', ')}` : 'Demo catalog and pricing already present; nothing changed.');
});
