import { formatTime, type Order, type Refund } from './api.js';
import { Link } from './route.js';

/** API.md's statuses that end an order's life: nothing moves it on from there. */
const CLOSED = new Set(['COMPLETED', 'CANCELLED', 'EXPIRED', 'REFUNDED', 'RETURNED', 'DEPOSIT_FORFEITED']);

/**
 * Where the state tables let a merchant move an order of its own lines alone (cancel it
 * unpaid, call a presale off once its deposit is paid): a merchant offered nothing there is
 * looking at an order holding another merchant's lines too, which it may not move.
 */
const MERCHANT_ACTS_ON_ITS_OWN = new Set(['PENDING_PAYMENT', 'PENDING_DEPOSIT', 'DEPOSIT_PAID']);

function warehouseOf(order: Order): string {
  const ids = [...new Set(order.items.flatMap((line) => (line.warehouseId ? [line.warehouseId] : [])))];
  return ids.length === 0 ? 'the warehouse' : `warehouse ${ids.join(' and ')}`;
}

/** A payment (`what`: payment, deposit, balance) the buyer owes by a deadline, which the system enforces once it has passed. */
function buyerPays(what: string, deadline: string | null | undefined, unpaid: string, now: number): string {
  const pays = what === 'payment' ? 'pays' : `pays the ${what}`;
  if (!deadline) return `The buyer ${pays} next.`;
  if (Date.parse(deadline) <= now) return `The buyer's ${what} was due by ${formatTime(deadline)}: ${unpaid} next.`;
  return `The buyer ${pays} next, by ${formatTime(deadline)}; unpaid then, ${unpaid}.`;
}

/**
 * Who moves an unsplit order (or a split order's child) on next, and how, from its type and
 * status as the API gives them; null for a status this console does not know. `declined`: a
 * refund of it the payment system declined to pay back, which nothing asks for again by itself.
 */
export function nextStepOf(order: Order, now: number, declined = false): string | null {
  if (CLOSED.has(order.status)) return 'The order is closed: nothing moves it on.';
  const channel = order.type === 'imported';
  switch (order.status) {
    case 'ACCEPTED':
      return 'The system records it next: it is still in the queue, to be priced and opened for payment in a moment. Nothing can be done on it until then.';
    case 'PENDING_PAYMENT':
      return buyerPays('payment', order.paymentDeadline, 'the system closes the order as expired', now);
    case 'PENDING_DEPOSIT':
      return buyerPays('deposit', order.paymentDeadline, 'the system closes the order as expired', now);
    case 'DEPOSIT_PAID':
      return buyerPays('balance', order.balanceDeadline, 'the system closes the order and the deposit is kept', now);
    case 'PAID':
      if (order.type === 'virtual') return 'The system delivers it next, with the payment.';
      if (channel) return 'Its sales channel, the merchant or the warehouse ships it next.';
      return `The system hands it to ${warehouseOf(order)} next.`;
    case 'IN_FULFILLMENT':
      return `${capitalized(warehouseOf(order))} picks, packs and ships it next.`;
    case 'SHIPPED':
      if (channel) return 'Its sales channel, the merchant or the warehouse reports it delivered next.';
      return `The buyer confirms receipt or ${warehouseOf(order)} reports it delivered next; if neither does, the system confirms it after a while.`;
    case 'DELIVERED':
      if (channel) return 'Its sales channel or the merchant completes it next.';
      return 'The buyer may ask for a return until the after-sales window closes; then the system completes the order, once no refund of it is still owed.';
    case 'RETURN_REQUESTED':
      return "The merchant (or an admin) approves or refuses the buyer's return next.";
    case 'RETURNING':
      return `${capitalized(warehouseOf(order))} receives the returned parcel next; the refund follows. If the parcel never comes back, the merchant (or an admin) closes the return, or the system does after a while.`;
    case 'REFUNDING':
      if (declined) return 'The payment system declined to pay a refund back, and nothing asks it again by itself: an admin asks it again, or records it paid back another way (Refunds and returns, below).';
      return 'The payment system pays the money back next.';
    default:
      return null;
  }
}

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/**
 * Who acts next on the order, from the caller's view. A split order moves with its children
 * (its status is the one of the child holding it back; to a merchant, of its own children's,
 * the only ones it sees): the child holding it is named. `offered`: whether the caller was
 * offered any action (null while its actions are not known).
 */
export function NextStep({ order, childOrders, refunds, role, offered, now }: { order: Order; childOrders: Order[]; refunds: readonly Refund[] | null; role: 'merchant' | 'admin'; offered: boolean | null; now: number }) {
  const split = order.subOrders.length > 0 && !CLOSED.has(order.status);
  // the order's refunds, a split order's children's among them (as its page lists them)
  const declined = refunds?.some((refund) => refund.parts.some((part) => part.status === 'FAILED')) ?? false;
  if (!split) {
    const shared = role === 'merchant' && offered === false && MERCHANT_ACTS_ON_ITS_OWN.has(order.status);
    return (
      <p class="next-step" data-testid="next-step">
        {nextStepOf(order, now, declined) ?? `The order is ${order.status}.`}
        {shared && " It holds another merchant's lines too: a merchant may not move it; the buyer or an admin may cancel it."}
      </p>
    );
  }
  const holding = childOrders.length === order.subOrders.length ? childOrders.find((child) => child.status === order.status) : undefined;
  if (holding) {
    return (
      <p class="next-step" data-testid="next-step">
        The order was split: it moves on with {role === 'merchant' ? 'your ' : ''}child order <Link to={`/orders/${holding.orderId}`}>{holding.orderId}</Link> ({holding.status}).{' '}
        {nextStepOf(holding, now, declined)}
      </p>
    );
  }
  return (
    <p class="next-step" data-testid="next-step">
      The order was split: it moves on with its child orders below.
    </p>
  );
}
