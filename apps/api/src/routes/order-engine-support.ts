import type { Actor } from '@orders/domain';
import { afterStaleOrderVersion, ProcessRepository, retryTransaction, SHIPMENT_STEPS, type Database } from '@orders/persistence';
import { followUp } from '@orders/settlement';
import type { Transaction } from 'kysely';
import type { AppDeps } from '../app-deps.js';

/**
 * A repeated callback changes nothing, but it is also the external system telling us it
 * never saw our answer: the follow-ups of the transition that brought the order to its
 * current status are enqueued again (their job ids make that harmless), so a crash
 * between the commit and the enqueue cannot strand an order. So are those of the step the
 * callback fired (`firedBy`, its action), when other steps came after it: a refund of some
 * units committed after a payment whose settle job was lost left the order paid, never split
 * nor handed over. A timer's job enqueued again waits only what is left until the order's
 * deadline, not its whole time once more.
 */
export async function followUpAgain(deps: AppDeps, orderId: string, firedBy?: string): Promise<void> {
  const process = new ProcessRepository(deps.db);
  const last = await process.lastStep(orderId);
  if (last) await followUp(deps, last.order, last.effects);
  if (firedBy === undefined || last?.action === firedBy) return;
  const fired = await process.lastStep(orderId, { action: firedBy });
  if (fired) await followUp(deps, fired.order, fired.effects);
}

/**
 * Fires one action of the order type's table that carries nothing but its state change and its
 * follow-ups (a merchant's or an admin's action, a channel's reported step of an imported order).
 * A parcel moved on by hand (an imported order's, shipped by its merchant or its channel) moves its
 * shipment as the warehouse's callback would.
 */
export async function fireTableAction(deps: AppDeps, request: { orderId: string; action: string; actor: Actor; detail?: string }): Promise<void> {
  const { orderId, action } = request;
  const shipment = Object.hasOwn(SHIPMENT_STEPS, action) ? SHIPMENT_STEPS[action as keyof typeof SHIPMENT_STEPS] : undefined;
  const at = deps.clock();
  const effects =
    shipment &&
    (async (trx: Transaction<Database>) => {
      await ProcessRepository.advanceShipment(trx, orderId, shipment.from, shipment.to, { at });
    });
  const { order, fired } = await retryTransaction(() => deps.orders.applyTransition({ ...request, at, ...(effects ? { effects } : {}) }), {
    alsoAfter: afterStaleOrderVersion,
  });
  deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
  await followUp(deps, order, fired.effects);
}
