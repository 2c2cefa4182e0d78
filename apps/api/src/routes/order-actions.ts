import { IllegalTransition, stateMachineFor, type OrderType } from '@orders/domain';
import { afterStaleOrderVersion, ProcessRepository, retryTransaction } from '@orders/persistence';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app-deps.js';
import { ownOrder } from '../queued-orders.js';
import { noFieldsBody, orderParamsSchema, problemRef } from '../schemas.js';
import { followUp } from '@orders/settlement';

/**
 * The buyer's actions on the forward life. `confirm-receipt` signs for a delivery: on a
 * split order it confirms every child that has shipped (each child is its own parcel);
 * on any other order it confirms the order itself. 409 ILLEGAL_TRANSITION when nothing
 * is waiting to be received.
 */
export async function orderActionRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const process = new ProcessRepository(deps.db);

  async function confirm(orderId: string): Promise<boolean> {
    const { order, fired } = await retryTransaction(() => deps.orders.applyTransition({ orderId, action: 'confirm_receipt', actor: 'buyer', at: deps.clock() }), {
      alsoAfter: afterStaleOrderVersion,
    });
    deps.metrics.transitions.inc({ type: order.type, from: fired.from, to: fired.to, action: fired.action });
    await followUp(deps, order, fired.effects);
    return true;
  }

  app.post<{ Params: { orderId: string } }>(
    '/v1/orders/:orderId/confirm-receipt',
    {
      onRequest: app.requireRole('buyer'),
      schema: {
        tags: ['orders'],
        summary: 'The buyer signs for the delivery (SHIPPED -> DELIVERED); again once delivered: 200, nothing changes',
        params: orderParamsSchema,
        body: noFieldsBody,
        response: { 200: { $ref: 'Order#' }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request) => {
      const { orderId } = request.params;
      const order = await ownOrder(deps, request.user, orderId, 'confirm_receipt');
      // a type whose buyer never signs here (imported: its channel's buyer signs there) refuses it in every status, delivered too
      const signsHere = stateMachineFor(order.type as OrderType).process.transitions.some((rule) => rule.action === 'confirm_receipt' && rule.actors.includes('buyer'));
      if (!signsHere) throw new IllegalTransition(order.status, 'confirm_receipt', 'buyer');
      // signing for a parcel the carrier already reported delivered (or the buyer signed for) is a repeat, not a refusal
      const delivered = async (ids: readonly string[]) => (await Promise.all(ids.map(async (id) => process.lastDeliveredAt(id)))).some((at) => at !== null);
      const children = await process.children(orderId);
      if (children.length === 0) {
        await confirm(orderId).catch(async (error: unknown) => {
          if (!(error instanceof IllegalTransition) || !(await delivered([orderId]))) throw error;
        });
      } else {
        const shipped = children.filter((child) => child.status === 'SHIPPED');
        if (shipped.length === 0 && !(await delivered(children.map((child) => child.order_id)))) throw new IllegalTransition(order.status, 'confirm_receipt', 'buyer');
        for (const child of shipped) await confirm(child.order_id).catch((error: unknown) => {
          // a child confirmed meanwhile (the auto-confirm timer, the warehouse): nothing to do for it
          if (!(error instanceof IllegalTransition)) throw error;
        });
      }
      return deps.orders.findOrder(orderId);
    },
  );
}
