import { merchantOrderView, type OrderRepository, type OrderView } from '@orders/persistence';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

interface ResponseSchema {
  $ref?: string;
  properties?: Record<string, ResponseSchema>;
  items?: ResponseSchema;
}

/** An order still in the queue has no amounts yet; queuedOrderFor gives a merchant its own lines of it alone. */
type OrderAnswer = OrderView | { amounts: null };

/** What a route's 200 answer carries of API.md's Order: one order, a page of them (`items`), or none. */
function ordersAnswered(response: unknown): 'order' | 'page' | null {
  const ok = (response as Record<number, ResponseSchema> | undefined)?.[200];
  if (ok?.$ref === 'Order#') return 'order';
  if (ok?.properties?.items?.items?.$ref === 'Order#') return 'page';
  return null;
}

/**
 * Every answer carrying orders, whichever route gives it (the order, the lists, the answer
 * of a cancel or an action), shows a merchant only its own part of an order that holds other
 * merchants' lines too (merchantOrderView); buyers and admins get the order whole. Picked here,
 * once, by the route's response schema, so no route can forget it.
 */
export const merchantOrderViewsPlugin = fp(
  async (app: FastifyInstance, { orders }: { orders: Pick<OrderRepository, 'orderHasMerchant'> }) => {
    async function asSeenBy(merchantId: string, view: OrderAnswer): Promise<OrderAnswer> {
      if (view.amounts === null) return view;
      const others = view.items.some((item) => item.merchantId !== merchantId);
      // a split order's children each hold one merchant's lines: the merchant's are those holding any
      const ownChildren = others ? await Promise.all(view.subOrders.map(async (child) => ((await orders.orderHasMerchant(child, merchantId)) ? [child] : []))) : [];
      return merchantOrderView(view, merchantId, ownChildren.flat());
    }

    const merchantOf = (request: FastifyRequest, reply: FastifyReply): string | null => {
      const principal = request.verifiedPrincipal;
      return reply.statusCode === 200 && principal !== null && !(principal instanceof Error) && principal.role === 'merchant' ? principal.sub : null;
    };

    app.addHook('onRoute', (route) => {
      const answered = ordersAnswered(route.schema?.response);
      if (answered === null) return;
      const narrow = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
        const merchantId = merchantOf(request, reply);
        if (merchantId === null) return payload;
        if (answered === 'order') return asSeenBy(merchantId, payload as OrderAnswer);
        const page = payload as { items: OrderView[] };
        return { ...page, items: await Promise.all(page.items.map(async (view) => asSeenBy(merchantId, view))) };
      };
      route.preSerialization = [...[route.preSerialization ?? []].flat(), narrow];
    });
  },
  { name: 'merchant-order-views', dependencies: ['auth'] },
);
