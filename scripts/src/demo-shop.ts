import type { Config } from '@orders/config';
import { refuseArguments } from './run-command.js';

/** Says a stack with NODE_ENV=production is a demo shop, where the demo shop may be loaded. */
export const DEMO_SHOP = '--demo-shop';

/** The demo shop's buyer, a gold member: `npm start` prints a token for it, as `npm run token` does by default. */
export const DEMO_BUYER = 'demo-buyer';

/** Reads the arguments of a command that loads the demo shop: --demo-shop, or none. */
export function demoShopSaid(args: readonly string[]): boolean {
  refuseArguments(args.filter((arg) => arg !== DEMO_SHOP));
  return args.includes(DEMO_SHOP);
}

/**
 * A production stack is most likely a shop that sells: a store-wide discount and half-price
 * phones are not for it, nor (`alsoWould`) whatever else the command does for a demo.
 */
export function refuseDemoInProduction(config: Config, demoShop: boolean, alsoWould = ''): void {
  if (config.NODE_ENV !== 'production' || demoShop) return;
  throw new Error(
    `NODE_ENV is production: the demo catalog would open a store-wide discount (DEMO-SPEND-100, WELCOME15) and sell half-price phones there${alsoWould}. For a demo stack, run it again with ${DEMO_SHOP}.`,
  );
}
