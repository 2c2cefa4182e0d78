import { merchantOrderView, type OrderRepository, type OrderView, type RefundRepository, type RefundView } from '@orders/persistence';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { refundSchema } from '../routes/reverse-flows.js';

interface ResponseSchema {
  $ref?: string;
  properties?: Record<string, ResponseSchema>;
  items?: ResponseSchema;
}

/** An order still in the queue has no amounts yet; queuedOrderFor gives a merchant its own lines of it alone. */
type OrderAnswer = OrderView | { amounts: null };

/** What a route's 200 answer carries of API.md's Order or refunds: one order, a page of orders (`items`), a list of refunds (`items`), or none. */
function answered(response: unknown): 'order' | 'page' | 'refunds' | null {
  const ok = (response as Record<number, ResponseSchema> | undefined)?.[200];
  if (ok?.$ref === 'Order#') return 'order';
  if (ok?.properties?.items?.items?.$ref === 'Order#') return 'page';
  if ((ok?.properties?.items?.items as unknown) === refundSchema) return 'refunds';
  return null;
}

/**
 * A refund (or return) of an order holding other merchants' lines too (one refunded before it
 * split), as a merchant sees it: its own lines alone, and what they give back (each line stores
 * its cents, its own parcel's shipping included, so the amount is theirs summed). `parts` (what
 * each payment of the whole order gives back) is then empty, as the order's payments are. null
 * when it names no line of the merchant's: another merchant's lines, or a whole payment given
 * back (a presale's deposit called off, a late payment), which names no line and is the whole
 * order's amount.
 */
function merchantRefundView(refund: RefundView, ownSkus: ReadonlySet<string>): RefundView | null {
  const items = refund.items.filter((item) => ownSkus.has(item.skuId));
  if (items.length === 0) return null;
  // every line its own: so are its amount and the payments' shares of it
  if (items.length === refund.items.length) return refund;
  return { ...refund, items, amountCents: items.reduce((sum, item) => sum + item.cents, 0), parts: [] };
}

/**
 * Every answer carrying orders, whichever route gives it (the order, the lists, the answer
 * of a cancel or an action), shows a merchant only its own part of an order that holds other
 * merchants' lines too (merchantOrderView); so does every list of an order's refunds and
 * returns (merchantRefundView). Buyers and admins get them whole. Picked here, once, by the
 * route's response schema, so no route can forget it. The answer of a refund the merchant
 * opens is its own already: it refunds only parts holding its lines alone.
 */
export const merchantOrderViewsPlugin = fp(
  async (app: FastifyInstance, { orders, refunds }: { orders: Pick<OrderRepository, 'lineMerchants' | 'stepsOf'>; refunds: Pick<RefundRepository, 'ofOrders'> }) => {
    async function asSeenBy(merchantId: string, views: OrderAnswer[]): Promise<OrderAnswer[]> {
      const shown = views.flatMap((view) => (view.amounts === null ? [] : [view]));
      // a split order's children each hold one merchant's lines: the merchant's are those holding
      // any, the children of every order of the answer read at once
      const lines = await orders.lineMerchants(shown.flatMap((view) => view.subOrders));
      const ownChildren = new Set(lines.filter((line) => line.merchantId === merchantId).map((line) => line.orderId));
      const childOf = new Map(lines.map((line) => [line.orderId, { status: line.orderStatus, updatedAt: line.orderUpdatedAt }]));
      // of the orders holding other merchants' lines too, the refunds and returns of those lines
      // alone (one before the split; a whole payment given back names no line and is the merchant's
      // too), whose steps name them: read at once
      const mixed = shown.filter((view) => view.items.some((item) => item.merchantId !== merchantId));
      // a split order's child whose completion waits for refunds owed: those of its order from before the split are among them
      const owing = shown.filter((view) => view.parentOrderId !== null && (view.nextTimer?.refundsOwed?.length ?? 0) > 0);
      const ownSkus = new Set([...mixed, ...owing].flatMap((view) => view.items.filter((item) => item.merchantId === merchantId).map((item) => item.skuId)));
      const othersRefunds = new Map<string, string[]>();
      for (const refund of await refunds.ofOrders([...mixed.map((view) => view.orderId), ...owing.map((view) => view.parentOrderId!)])) {
        if (refund.items.length === 0 || refund.items.some((item) => ownSkus.has(item.skuId))) continue;
        othersRefunds.set(refund.orderId, [...(othersRefunds.get(refund.orderId) ?? []), refund.refundId]);
      }
      // of a split order holding other merchants' lines too, its own children's steps: what its part moved from and to
      const steps = await orders.stepsOf(mixed.flatMap((view) => view.subOrders.filter((child) => ownChildren.has(child))));
      return views.map((view) => {
        if (view.amounts === null) return view;
        const own = view.subOrders.filter((child) => ownChildren.has(child));
        const others = [...(othersRefunds.get(view.orderId) ?? []), ...(view.parentOrderId === null ? [] : (othersRefunds.get(view.parentOrderId) ?? []))];
        return merchantOrderView(view, merchantId, own, others, own.map((child) => childOf.get(child)!), steps.filter((step) => own.includes(step.orderId)));
      });
    }

    /** Of each order, the merchant's SKUs among its lines; 'whole' when every line is its own (its child of a split order). */
    async function ownSkusOf(orderIds: readonly string[], merchantId: string): Promise<Map<string, 'whole' | ReadonlySet<string>>> {
      const lines = await orders.lineMerchants(orderIds);
      return new Map(
        orderIds.map((orderId) => {
          const ofOrder = lines.filter((line) => line.orderId === orderId);
          const own = ofOrder.filter((line) => line.merchantId === merchantId);
          return [orderId, ofOrder.length > 0 && own.length === ofOrder.length ? 'whole' : new Set(own.map((line) => line.skuId))];
        }),
      );
    }

    async function refundsSeenBy(merchantId: string, refunds: RefundView[]): Promise<RefundView[]> {
      // an order's refunds are on the order and its children: the lines of all of them read at once
      const owned = await ownSkusOf([...new Set(refunds.map((refund) => refund.orderId))], merchantId);
      return refunds.flatMap((refund) => {
        const own = owned.get(refund.orderId)!;
        const seen = own === 'whole' ? refund : merchantRefundView(refund, own);
        return seen ? [seen] : [];
      });
    }

    const merchantOf = (request: FastifyRequest, reply: FastifyReply): string | null => {
      const principal = request.verifiedPrincipal;
      return reply.statusCode === 200 && principal !== null && !(principal instanceof Error) && principal.role === 'merchant' ? principal.sub : null;
    };

    app.addHook('onRoute', (route) => {
      const carries = answered(route.schema?.response);
      if (carries === null) return;
      const narrow = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
        const merchantId = merchantOf(request, reply);
        if (merchantId === null) return payload;
        if (carries === 'order') return (await asSeenBy(merchantId, [payload as OrderAnswer]))[0];
        if (carries === 'refunds') {
          const list = payload as { items: RefundView[] };
          return { ...list, items: await refundsSeenBy(merchantId, list.items) };
        }
        const page = payload as { items: OrderView[] };
        return { ...page, items: await asSeenBy(merchantId, page.items) };
      };
      route.preSerialization = [...[route.preSerialization ?? []].flat(), narrow];
    });
  },
  { name: 'merchant-order-views', dependencies: ['auth'] },
);
