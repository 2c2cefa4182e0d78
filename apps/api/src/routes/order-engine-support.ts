import type { Effect } from '@orders/domain';
import { ProcessRepository, type OrderRow } from '@orders/persistence';
import { enqueueEffects } from '@orders/queues';
import type { AppDeps } from '../app-deps.js';

/**
 * Enqueues the follow-up jobs of a transition that committed; a timer's job falls due at the
 * order's deadline as MySQL holds it (timersDue), whatever this host's clock says.
 */
export function followUp(deps: AppDeps, order: Pick<OrderRow, 'order_id' | 'user_id'>, effects: readonly Effect[]): Promise<void> {
  return enqueueEffects(deps.queues, { orderId: order.order_id, userId: order.user_id }, effects, () => deps.orders.timersDue(order.order_id, effects, deps.config));
}

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

/** Thrown inside a transition's transaction to roll it back: the change was already applied. */
export class AlreadyApplied extends Error {
  constructor() {
    super('already applied');
    this.name = 'AlreadyApplied';
  }
}
