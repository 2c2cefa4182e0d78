import { TIMER_ACTIONS, afterSalesWindowEnd, benefitsOfPart, deriveParentStatus, startsATimer, stateMachineFor, type Address, type AppliedBenefits, type DiscountShare, type OrderStateMachine, type OrderType } from '@orders/domain';
import type { OrderHistoryRow, OrderItemRow, OrderRow } from './schema.js';
import { isAfterSalesWindow, timerDeadlineOf, type TimerSettings } from './timer-deadlines.js';

/** An order as API.md shows it (`GET /v1/orders/:orderId`). */
export interface OrderView {
  orderId: string;
  parentOrderId: string | null;
  type: string;
  status: string;
  buyerStatus: string;
  merchantStatus: string;
  userId: string;
  items: Array<{
    skuId: string;
    title: string;
    qty: number;
    unitPriceCents: number;
    discountCents: number;
    payableCents: number;
    warehouseId: string;
    merchantId: string;
    channel: string;
    shippingCents: number;
    /** where each cent of the line's discount came from */
    discounts: DiscountShare[];
    refundedQty: number;
    refundedCents: number;
  }>;
  amounts: { subtotalCents: number; discountCents: number; shippingCents: number; payableCents: number; refundedCents: number };
  /** null for an order placed without one: a virtual order ships nothing */
  address: Address | null;
  couponCode: string | null;
  /** the member level, promotions and coupon the order used */
  benefits: AppliedBenefits | null;
  /** the payment that paid the order last (a presale: its deposit, then its balance); a split order's child shows its parent's, which paid it */
  payment: { paymentId: string; transactionId: string | null; paidAt: string | null; method: string } | null;
  /**
   * Every payment attempt of the order, oldest first; none for a split order's child (its parent
   * holds them). An attempt that took the money after another had paid the order is SUCCEEDED
   * too: it went back, as a refund of the order. `firstSentAt`: when the payment system was first
   * asked for it (null: never sent).
   */
  payments: Array<{ paymentId: string; purpose: string; amountCents: number; status: string; transactionId: string | null; paidAt: string | null; firstSentAt: string | null }>;
  /**
   * the order's parcels: a split order's are its children's, each naming the order (child) that ships it.
   * `changeRefusedAt`: when the warehouse refused a change of the parcel (a new address, units taken
   * out) as too late, the parcel having left: it goes to the address, with the units, it was handed over with
   */
  shipments: Array<{ shipmentId: string; orderId: string; warehouseId: string; trackingNo: string | null; status: string; changeRefusedAt: string | null }>;
  subOrders: string[];
  /** `detail`: the reason given with the step, or what it changed (a refund's id, a new address); null when none */
  history: Array<{ from: string | null; action: string; to: string; at: string; actor: string; detail: string | null }>;
  paymentDeadline: string;
  /** a presale's balance deadline, set when its deposit is paid (and kept once the balance is paid or the deposit forfeited); null for any other order */
  balanceDeadline: string | null;
  /**
   * What the system does to the order by itself next unless someone acts first, and from when
   * (by MySQL's clock): `expire` an unpaid order, `expire_balance` (a presale's deposit kept),
   * `auto_confirm` receipt of a shipped order, `complete` it once its after-sales window closes,
   * `approve_return` a request the shop did not review, `close_return` one whose parcel never came.
   * Null when nothing is due by itself (closed; a split order's timers run on its children).
   * `refundsOwed`, on `complete` alone (empty while none is): the refunds the buyer is still owed
   * of the order (a split order's child: of its order from before the split too), payments due back
   * whole among them (refundsOwedIn), which hold its
   * completion however long ago `dueAt` passed; it completes once none is (paid back, or settled by hand).
   */
  nextTimer: { action: string; dueAt: string; refundsOwed?: string[] } | null;
  /** an imported order's channel and its id there; null for this shop's own orders */
  sourceChannel: string | null;
  externalOrderId: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * The coupon whose use the order holds, or held, in Redis: its code where its pricing applied
 * it. An order it took nothing off holds none once written (every line in its flash sale took
 * none at checkout; one below its minimum spend gave it back as it was written), so a release
 * long after, its reservation record gone from Redis, must give none back: it would be another
 * order's. An order written before orders kept their benefits cannot tell: its code.
 */
export function couponUseOf(order: Pick<OrderRow, 'coupon_code' | 'benefits'>): string | null {
  if (order.coupon_code === null || order.benefits === null) return order.coupon_code;
  return (JSON.parse(order.benefits) as AppliedBenefits).coupon ? order.coupon_code : null;
}

/** The order's delivery address; null for an order placed without one (a virtual order: it ships nothing). */
export function addressOf(order: Pick<OrderRow, 'address'>): Address | null {
  return order.address === null ? null : (JSON.parse(order.address) as Address);
}

export function toOrderView(
  order: OrderRow,
  items: OrderItemRow[],
  history: OrderHistoryRow[],
  extras: Pick<OrderView, 'payment' | 'payments' | 'shipments' | 'subOrders'> = { payment: null, payments: [], shipments: [], subOrders: [] },
  timers?: { settings: TimerSettings; refundsOwed: readonly string[] },
): OrderView {
  const labels = stateMachineFor(order.type as OrderType).labels(order.status);
  return {
    orderId: order.order_id,
    parentOrderId: order.parent_order_id,
    type: order.type,
    status: order.status,
    buyerStatus: labels.buyerLabel,
    merchantStatus: labels.merchantLabel,
    userId: order.user_id,
    items: items.map((item) => ({
      skuId: item.sku_id,
      title: item.title,
      qty: item.qty,
      unitPriceCents: Number(item.unit_price_cents),
      discountCents: Number(item.discount_cents),
      payableCents: Number(item.payable_cents),
      warehouseId: item.warehouse_id,
      merchantId: item.merchant_id,
      channel: item.channel,
      shippingCents: Number(item.shipping_cents),
      discounts: item.discounts === null ? [] : (JSON.parse(item.discounts) as DiscountShare[]),
      refundedQty: item.refunded_qty,
      refundedCents: Number(item.refunded_cents),
    })),
    amounts: {
      subtotalCents: Number(order.subtotal_cents),
      discountCents: Number(order.discount_cents),
      shippingCents: Number(order.shipping_cents),
      payableCents: Number(order.payable_cents),
      refundedCents: Number(order.refunded_cents),
    },
    address: addressOf(order),
    couponCode: order.coupon_code,
    benefits: order.benefits === null ? null : (JSON.parse(order.benefits) as AppliedBenefits),
    ...extras,
    history: history.map((h) => ({ from: h.from_status, action: h.action, to: h.to_status, at: h.at.toISOString(), actor: h.actor, detail: h.detail })),
    paymentDeadline: order.payment_deadline.toISOString(),
    balanceDeadline: order.balance_deadline?.toISOString() ?? null,
    nextTimer: timers && extras.subOrders.length === 0 ? nextTimerOf(order, history, timers) : null,
    sourceChannel: order.source_channel,
    externalOrderId: order.external_order_id,
    createdAt: order.created_at.toISOString(),
    updatedAt: order.updated_at.toISOString(),
  };
}

/**
 * The timer the step that brought the order into its status started (timersDue reads the same
 * step): its action and when it falls due. A step that left the status as it was (an address
 * changed while the order awaits payment) started none and stopped none.
 */
function nextTimerOf(order: OrderRow, history: readonly OrderHistoryRow[], { settings, refundsOwed }: { settings: TimerSettings; refundsOwed: readonly string[] }): OrderView['nextTimer'] {
  const machine = stateMachineFor(order.type as OrderType);
  if (machine.isFinal(order.status)) return null;
  const entered = history.findLast((step) => step.to_status === order.status && step.from_status !== order.status);
  const effects = (entered?.from_status && machine.rule(entered.from_status, entered.action)?.effects) || [];
  if (effects.includes('schedulePaymentDeadline')) return { action: 'expire', dueAt: order.payment_deadline.toISOString() };
  const effect = effects.find(startsATimer);
  if (!entered || !effect) return null;
  const deadline = timerDeadlineOf(effect, settings);
  if (isAfterSalesWindow(deadline)) {
    const steps = history.map((step) => ({ from: step.from_status, action: step.action, to: step.to_status, at: step.at }));
    const dueAt = afterSalesWindowEnd(steps, deadline.afterSalesWindowMs, deadline.graceMs);
    return dueAt && { action: TIMER_ACTIONS[effect], dueAt: dueAt.toISOString(), refundsOwed: [...refundsOwed] };
  }
  if (typeof deadline === 'object') {
    const dueAt = new Date(entered.at.getTime() + deadline.inStatusForMs).toISOString();
    return effect === 'scheduleCompletion' ? { action: TIMER_ACTIONS[effect], dueAt, refundsOwed: [...refundsOwed] } : { action: TIMER_ACTIONS[effect], dueAt };
  }
  return order.balance_deadline && { action: TIMER_ACTIONS[effect], dueAt: order.balance_deadline.toISOString() };
}

/** Whether `text` names one of `ids` (SKU or order ids) as a word of its own, a full stop after it included. */
function namesAny(text: string, ids: ReadonlySet<string>): boolean {
  return text.split(/[^A-Za-z0-9._-]+/).some((word) => ids.has(word) || ids.has(word.replace(/\.+$/, '')));
}

/** A step of a split order's child, as a merchant's view of the split order reads its own part's moves from them. */
export interface ChildStep {
  orderId: string;
  from: string | null;
  action: string;
  to: string;
  at: string;
  actor: string;
}

/**
 * The status a merchant's own part of a split order moved from and to at each of the order's
 * steps: its own children's statuses derived as the whole order's are from all of its children's,
 * replayed through `steps` (theirs, oldest first). A step the order took from one of those
 * children is that child's move; any other (an address change, a refund paid back) moves the
 * part as the children's steps at its instant did (their own steps of it). A step before any of
 * them keeps its own. `unwritten`: the part's moves the history as shown has no step of (the
 * order's status followed another merchant's child, or moved with that child's step, not shown),
 * each as a step derived from the child that made it.
 */
function ownPartMoves(machine: OrderStateMachine, steps: readonly ChildStep[]) {
  const statuses = new Map<string, string>();
  const moves = steps.map((step) => {
    const from = statuses.size > 0 ? deriveParentStatus(machine, [...statuses.values()]) : null;
    statuses.set(step.orderId, step.to);
    return { ...step, partFrom: from, partTo: deriveParentStatus(machine, [...statuses.values()]) };
  });
  const relabel = (step: OrderView['history'][number]): { from: string | null; to: string } => {
    const child = /^derived from child order (\S+)$/.exec(step.detail ?? '')?.[1];
    const own = child === undefined ? undefined : moves.find((move) => move.orderId === child && move.action === step.action && move.at === step.at);
    if (own) return { from: own.partFrom ?? step.from, to: own.partTo };
    const [before, after] = [moves.findLast((move) => move.at < step.at), moves.findLast((move) => move.at <= step.at)];
    return after ? { from: before?.partTo ?? after.partFrom ?? step.from, to: after.partTo } : { from: step.from, to: step.to };
  };
  /** The part's moves no step of `shown` (the history as relabelled, another merchant's steps dropped) shows, as steps of their own. */
  const unwritten = (shown: OrderView['history']): OrderView['history'] =>
    moves
      .filter((move) => move.partFrom !== null && move.partFrom !== move.partTo)
      .filter((move) => !shown.some((step) => step.at === move.at && step.from === move.partFrom && step.to === move.partTo))
      .map((move) => ({ from: move.partFrom, action: move.action, to: move.partTo, at: move.at, actor: move.actor, detail: `derived from child order ${move.orderId}` }));
  return { relabel, unwritten };
}

/**
 * What a merchant sees of the benefits of its own lines of an order (`shares`: those lines'
 * discount shares): their share of what the order used, and the coupon's code only where those
 * lines took some of the coupon (flash-sale lines take none; another merchant's lines may have
 * taken all of it). An order written before orders kept their benefits cannot tell: its code.
 */
export function benefitsOfOwnLines(order: Pick<OrderView, 'couponCode' | 'benefits'>, shares: readonly DiscountShare[]): Pick<OrderView, 'couponCode' | 'benefits'> {
  const benefits = order.benefits && benefitsOfPart(shares, order.benefits);
  return { benefits, couponCode: benefits && !benefits.coupon ? null : order.couponCode };
}

/**
 * An order as a merchant holding some of its lines sees it: in a marketplace a merchant does
 * not learn what the buyer bought from another merchant, nor at what price. Of an order
 * holding other merchants' lines too (unpaid, or the parent of a split order) it keeps the
 * merchant's lines alone, and its amounts are those lines' sums of the shares stored on each:
 * their discounts (and the benefits those came from, the coupon's code with its benefit), the shipping on them (pricing puts each
 * warehouse's fee on that warehouse's lines; what is only an order total, an imported order's
 * shipping before its split, is no merchant's), what was refunded of them. Gone are the
 * payment attempts (each took the whole order's amount; `payment` still says it is paid),
 * other warehouses' shipments, other children's, and the children other than `ownSubOrders`. The history drops
 * the steps naming another merchant's child (a split order's steps derived from it: that
 * merchant's refund, return or delivery) or one of `othersRefunds`: the refunds and returns of
 * the order holding other merchants' lines alone (a refund's step carries the buyer's reason
 * about those goods); a step naming another merchant's SKU keeps all but its detail. Those
 * refunds leave `nextTimer.refundsOwed` too (of a split order's child, whose own lines are the
 * merchant's alone, the only change: its order's refunds from before the split are owed on it). A split order's status
 * (and its labels) is derived from the merchant's own children's, `ownChildren`, as the
 * whole order's is from all of its children's: another merchant's child refunded or shipped is
 * not the merchant's to see; so are the statuses its steps after the split went from and to
 * (another merchant's return under way, say), each read from `ownChildSteps` (its own children's
 * steps, in the order they were written) as its own part's moves instead (ownPartMoves), a move of
 * its own part no step shows (the order moved with another merchant's child then, or not at all)
 * being a step of its own, derived from its child; and its `updatedAt`, its own children's last change.
 * An order of the merchant's lines alone is shown whole.
 */
export function merchantOrderView(
  view: OrderView,
  merchantId: string,
  ownSubOrders: readonly string[],
  othersRefunds: readonly string[] = [],
  ownChildren: ReadonlyArray<{ status: string; updatedAt: string }> = [],
  ownChildSteps: readonly ChildStep[] = [],
): OrderView {
  const items = view.items.filter((item) => item.merchantId === merchantId);
  // a completion held for refunds owed: of a split order's child, those of its order from before the split too, another merchant's among them
  const nextTimer = view.nextTimer?.refundsOwed ? { ...view.nextTimer, refundsOwed: view.nextTimer.refundsOwed.filter((refundId) => !othersRefunds.includes(refundId)) } : view.nextTimer;
  if (items.length === view.items.length) {
    // a split order's child carries its order's coupon code, though its lines may have taken none of it (another merchant's did)
    const couponCode = view.parentOrderId === null ? view.couponCode : benefitsOfOwnLines(view, items.flatMap((item) => item.discounts)).couponCode;
    return othersRefunds.length === 0 && couponCode === view.couponCode ? view : { ...view, nextTimer, couponCode };
  }
  const sum = (cents: (item: OrderView['items'][number]) => number) => items.reduce((total, item) => total + cents(item), 0);
  const own = new Set(ownSubOrders);
  const warehouses = new Set(items.map((item) => item.warehouseId));
  const othersParts = new Set([...view.subOrders.filter((child) => !own.has(child)), ...othersRefunds]);
  const others = new Set([...view.items.filter((item) => item.merchantId !== merchantId).map((item) => item.skuId), ...othersParts]);
  const machine = stateMachineFor(view.type as OrderType);
  const status = ownChildren.length > 0 ? deriveParentStatus(machine, ownChildren.map((child) => child.status)) : view.status;
  const labels = machine.labels(status);
  const { benefits, couponCode } = benefitsOfOwnLines(view, items.flatMap((item) => item.discounts));
  // a split order's steps after the split moved it by all of its children's statuses: shown as the moves of the merchant's own part
  const splitAt = view.history.findLastIndex((step) => step.action === 'split');
  const partMoves = ownPartMoves(machine, ownChildSteps);
  // a step of another merchant's child (derived from it) or of a refund of another's lines alone is theirs, not shown;
  // one of the whole order (placed, paid, split into the merchant's children and others') is, its detail dropped
  const shown = view.history.flatMap((whole, index) => {
    const step = ownChildren.length > 0 && index > splitAt ? { ...whole, ...partMoves.relabel(whole) } : whole;
    if (step.detail === null || !namesAny(step.detail, others)) return [step];
    return namesAny(step.detail, othersParts) && !namesAny(step.detail, own) ? [] : [{ ...step, detail: null }];
  });
  return {
    ...view,
    status,
    buyerStatus: labels.buyerLabel,
    merchantStatus: labels.merchantLabel,
    items,
    amounts: {
      subtotalCents: sum((item) => item.unitPriceCents * item.qty),
      discountCents: sum((item) => item.discountCents),
      shippingCents: sum((item) => item.shippingCents),
      payableCents: sum((item) => item.payableCents),
      refundedCents: sum((item) => item.refundedCents),
    },
    benefits,
    couponCode,
    payments: [],
    // its own children's parcels; of an order not split (an imported one holding other merchants' lines), its own warehouses'
    shipments: view.shipments.filter((shipment) => own.has(shipment.orderId) || (shipment.orderId === view.orderId && warehouses.has(shipment.warehouseId))),
    subOrders: view.subOrders.filter((child) => own.has(child)),
    nextTimer,
    // another merchant's child moving the whole order (its refund, its delivery) is not a change of this part
    updatedAt: ownChildren.map((child) => child.updatedAt).sort().at(-1) ?? view.updatedAt,
    history: ownChildren.length > 0 ? withMovesUnwritten(shown, partMoves.unwritten(shown)) : shown,
  };
}

/** The history with the part's moves the order took no step for, after the split, each before the steps of its instant and after those before it. */
function withMovesUnwritten(history: OrderView['history'], unwritten: OrderView['history']): OrderView['history'] {
  const merged = [...history];
  const afterSplit = merged.findLastIndex((step) => step.action === 'split') + 1;
  for (const move of unwritten) {
    const at = merged.findIndex((step, index) => index >= afterSplit && step.at >= move.at);
    merged.splice(at === -1 ? merged.length : at, 0, move);
  }
  return merged;
}
