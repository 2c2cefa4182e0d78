import { stateMachineFor, type Effect, type OrderType } from '@orders/domain';
import type { OrderRow } from '@orders/persistence';
import { enqueueEffects, type TimerDelays } from '@orders/queues';
import type { AppDeps } from '../app-deps.js';

export function timerDelays(config: AppDeps['config']): TimerDelays {
  return { autoConfirmMs: config.AUTO_CONFIRM_MS, afterSalesWindowMs: config.AFTER_SALES_WINDOW_MS, balanceTimeoutMs: config.PRESALE_BALANCE_TIMEOUT_MS };
}

/** Enqueues the follow-up jobs of a transition that just committed. */
export function followUp(deps: AppDeps, order: Pick<OrderRow, 'order_id' | 'user_id'>, effects: readonly Effect[]): Promise<void> {
  return enqueueEffects(deps.queues, { orderId: order.order_id, userId: order.user_id }, effects, timerDelays(deps.config));
}

/**
 * A repeated callback changes nothing, but it is also the external system telling us it
 * never saw our answer: the follow-ups of the transition that brought the order to its
 * current status are enqueued again (their job ids make that harmless), so a crash
 * between the commit and the enqueue cannot strand an order.
 */
export async function followUpAgain(deps: AppDeps, orderId: string): Promise<void> {
  const order = await deps.orders.findOrderRow(orderId);
  if (!order) return;
  const last = await deps.db
    .selectFrom('order_history')
    .select(['from_status', 'action', 'to_status'])
    .where('order_id', '=', orderId)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!last || last.to_status !== order.status || last.from_status === null) return;
  const rule = stateMachineFor(order.type as OrderType).rule(last.from_status, last.action);
  if (rule?.effects) await followUp(deps, order, rule.effects);
}

/** Thrown inside a transition's transaction to roll it back: the change was already applied. */
export class AlreadyApplied extends Error {
  constructor() {
    super('already applied');
    this.name = 'AlreadyApplied';
  }
}
