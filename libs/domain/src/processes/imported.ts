import type { OrderProcess, TransitionRule } from '../order-process.js';
import { retailStates, type RetailAction, type RetailStatus } from './retail.js';

export type ImportedStatus = Extract<RetailStatus, 'ACCEPTED' | 'PAID' | 'SHIPPED' | 'DELIVERED' | 'COMPLETED' | 'CANCELLED'>;
export type ImportedAction = Extract<RetailAction, 'persist' | 'ship' | 'deliver' | 'complete' | 'cancel'>;

const { ACCEPTED, PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED } = retailStates;

/**
 * An order taken by another business order system (a channel distribution platform, a
 * partner) and imported into the order centre: it was paid in its channel, so it arrives
 * paid; its channel (as `system`), the merchant or the warehouse move it on from there.
 * The import replays the steps up to the status the channel reports, so its history
 * reads like any other order's.
 */
const transitions: TransitionRule<ImportedStatus, ImportedAction>[] = [
  { from: 'ACCEPTED', action: 'persist', to: 'PAID', actors: ['system'] },
  { from: 'PAID', action: 'ship', to: 'SHIPPED', actors: ['system', 'merchant', 'warehouse'] },
  // its parcel waits at the warehouse where the channel left it: the warehouse is told to drop it
  { from: 'PAID', action: 'cancel', to: 'CANCELLED', actors: ['system', 'merchant', 'admin'], effects: ['updateFulfilment'] },
  { from: 'SHIPPED', action: 'deliver', to: 'DELIVERED', actors: ['system', 'merchant', 'warehouse'] },
  // its SHIPPED event lost (the warehouse gave up sending it): the delivery says the parcel left. The
  // warehouse's alone: the import's replay of a channel's DELIVERED (as `system`) goes through SHIPPED
  { from: 'PAID', action: 'deliver', to: 'DELIVERED', actors: ['warehouse'] },
  { from: 'DELIVERED', action: 'complete', to: 'COMPLETED', actors: ['system', 'merchant'] },
];

export const importedProcess: OrderProcess<ImportedStatus, ImportedAction> = {
  type: 'imported',
  initial: 'ACCEPTED',
  states: { ACCEPTED, PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED },
  transitions,
  forwardPath: ['ACCEPTED', 'PAID', 'SHIPPED', 'DELIVERED', 'COMPLETED'],
  paymentActions: [],
};
