import type { Effect } from '@orders/domain';
import type { OrderRepository, OrderRow, TimerSettings } from '@orders/persistence';
import { enqueueEffects, type OrderQueues } from '@orders/queues';

/** What enqueuing a transition's follow-ups takes: the queues, and MySQL's deadlines of its timers. */
export interface FollowUpDeps {
  queues: OrderQueues;
  orders: OrderRepository;
  config: TimerSettings;
}

/**
 * Enqueues the follow-up jobs of a transition that committed; a timer's job falls due at the
 * order's deadline as MySQL holds it (timersDue), whatever this host's clock says.
 */
export function followUp(deps: FollowUpDeps, order: Pick<OrderRow, 'order_id' | 'user_id'>, effects: readonly Effect[]): Promise<void> {
  return enqueueEffects(deps.queues, { orderId: order.order_id, userId: order.user_id }, effects, () => deps.orders.timersDue(order.order_id, effects, deps.config));
}

/** Thrown inside a transition's transaction to roll it back: the change was already applied. */
export class AlreadyApplied extends Error {
  constructor() {
    super('already applied');
    this.name = 'AlreadyApplied';
  }
}
