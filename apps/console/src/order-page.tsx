import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiProblem, apiNow, formatTime, idempotencyKey, placedAt, problemText, type Address, type AllowedAction, type Api, type Order, type OrderLine, type Payment, type Refund, type RefundAnswer } from './api.js';
import { formatCents } from './money.js';
import { keepDraft, readDraft, useDraft } from './drafts.js';
import { NextStep } from './next-step.js';
import { OrderDeadLetters } from './dead-letters-page.js';
import { NextTimer } from './next-timer.js';
import { ProblemAlert } from './problem-alert.js';
import { Link, ordersListPath } from './route.js';

/** The merchant's words for the state table's actions; an action without one shows its table name. */
const ACTION_LABELS: Record<string, string> = {
  ship: 'Mark shipped',
  deliver: 'Mark delivered',
  complete: 'Complete',
  cancel: 'Cancel (unpaid)',
  refund: 'Cancel with refund',
  approve_return: 'Approve return',
  refuse_return: 'Refuse return',
  close_return: 'Close return (parcel never came back)',
};

/**
 * An imported order arrives paid in its sales channel, and its table cancels it from PAID:
 * CANCELLED at once, its warehouse told to drop the parcel, nothing paid back through this
 * shop's payment system (docs/order-centre.md).
 */
const CANCEL_PAID_IN_CHANNEL = 'Cancel (paid in its channel: no refund from here)';

/** The return a decision is on (its route names it); undefined for any other action. */
const returnOf = (allowed: AllowedAction) => /\/returns\/([^/]+)\/[a-z]+$/.exec(allowed.href)?.[1];
/** An action's key on the page: a split order lists the same decision once for each child's return. */
const actionKey = (allowed: AllowedAction) => [allowed.action, returnOf(allowed)].filter(Boolean).join('-');
/** Which return a decision is on, said only where the same decision is offered on several. */
const returnNamed = (allowed: AllowedAction, actions: readonly AllowedAction[]) =>
  actions.filter((other) => other.action === allowed.action).length > 1 ? ` of return ${returnOf(allowed)}` : '';

/**
 * What the actions that cannot be undone do, asked before they are sent: one click at 3 a.m.
 * should not pay an order back, or close a return for good, by mistake.
 */
const CONSEQUENCES: Record<string, string> = {
  refund: 'Cancel this order and pay the buyer back in full? This cannot be undone.',
  refuse_return: 'Refuse this return? The buyer gets nothing back for it. This cannot be undone.',
  close_return: 'Close this return as never sent back? Nothing is paid back, and a parcel that arrives later changes nothing. This cannot be undone.',
  cancel: 'Cancel this unpaid order? The buyer can no longer pay it, and its units go back on sale. This cannot be undone.',
  ship: 'Mark this order shipped? It can no longer be cancelled: its parcel is on its way. This cannot be undone.',
  deliver: 'Mark this order delivered? Do so once its buyer has the parcel. This cannot be undone.',
  complete: 'Complete this order? It is closed for good. This cannot be undone.',
};
/** An approval commits the shop to pay the return's units back once its parcel is received: `decided` is the return it decides (null: not read). */
const approveReturnConsequence = (decided: Refund | null) => {
  if (!decided) return 'Approve this return? The buyer is paid back its units once its parcel is received. This cannot be undone.';
  const units = decided.items.reduce((sum, item) => sum + item.qty, 0);
  return `Approve the return of ${units} unit${units === 1 ? '' : 's'} (${decided.items.map((item) => `${item.qty} × ${item.skuId}`).join(', ')}): refund ${formatCents(decided.amountCents)} once received? This cannot be undone.`;
};
/** The return a decision's route names (…/returns/{returnId}/approve). */
const RETURN_IN_HREF = /\/returns\/([^/]+)\/[a-z]+$/;
const CANCEL_IN_CHANNEL_CONSEQUENCE = 'Cancel this order? Its parcel is dropped and nothing is paid back from here: the buyer paid in its channel. This cannot be undone.';
const ASK_AGAIN_CONSEQUENCE =
  'Ask the payment system again to pay this refund back? Do so once what made it decline is fixed (the buyer\'s card, the provider). Should it still pay the declined request too, the buyer has it twice.';
const ASK_UNCONFIRMED_AGAIN_CONSEQUENCE =
  'Ask the payment system again for this refund it never confirmed? It is asked under its own id, which the payment system pays at most once: paid already, it says so by its callback.';
const ASK_ABOUT_PAYMENT_AGAIN_CONSEQUENCE =
  'Ask the payment system again about this payment it never reported on? It is asked under its own id, which charges nothing twice: taken for an order that no longer owes it, it goes back to the buyer whole; declined or never received, it fails.';
/** How long a payment's outcome is asked about: PAYMENT_CONFIRMATION_GIVE_UP_MS, as the page the api served names it (24 h under Vite's dev server). */
const PAYMENT_CONFIRMATION_GIVE_UP_MS = Number(document.querySelector<HTMLMetaElement>('meta[name="payment-confirmation-give-up-ms"]')?.content) || 24 * 3600 * 1000;
/** A payment sent to the payment system and never reported on within PAYMENT_CONFIRMATION_GIVE_UP_MS: nothing asks about it any more. */
const paymentGivenUp = (payment: Payment) => payment.status === 'PENDING' && !!payment.firstSentAt && apiNow() - Date.parse(payment.firstSentAt) > PAYMENT_CONFIRMATION_GIVE_UP_MS;
/** How long a refund's confirmation is waited for: REFUND_CONFIRMATION_GIVE_UP_MS, as the page the api served names it (24 h under Vite's dev server). */
const REFUND_CONFIRMATION_GIVE_UP_MS = Number(document.querySelector<HTMLMetaElement>('meta[name="refund-confirmation-give-up-ms"]')?.content) || 24 * 3600 * 1000;
/** A part the payment system accepted and never confirmed within REFUND_CONFIRMATION_GIVE_UP_MS: nothing asks about it any more. */
const confirmationGivenUp = (part: Refund['parts'][number]) => part.status === 'SENT' && part.sentAt !== undefined && apiNow() - Date.parse(part.sentAt) > REFUND_CONFIRMATION_GIVE_UP_MS;
const REFUND_SENT_BEFORE =
  'A refund sent before from this page, whose answer never came, reached the order system in other words or units, and may have refunded them: nothing was sent now. Read its refunds below; the next refund sent is a new one.';
const SETTLED_BY_HAND_CONSEQUENCE =
  'Record that the buyer was paid this back another way? The refund is then settled and the order closes. Should the payment system still pay it, the buyer has it twice: tell the payment provider to drop it first. This cannot be undone.';

/** What the button of `action` says on an order of `type`. */
const labelOf = (action: string, type: string) => (action === 'cancel' && type === 'imported' ? CANCEL_PAID_IN_CHANNEL : (ACTION_LABELS[action] ?? action));

/** The longest reason each action's route takes (the api's schemas): a return's decision keeps it after the return's id, in fewer characters. */
const REASON_MAX_LENGTH: Record<string, number> = { approve_return: 400, refuse_return: 400, close_return: 400 };
const REASON_MAX_LENGTH_ELSE = 500;

/** A partial refund needs its units chosen: it has a form of its own, not a button. */
const CHOSEN_UNITS = 'refund_lines';
/** A new address is a form of its own too, sent with PATCH. */
const NEW_ADDRESS = 'change_address';

/** The api checks each field's form (API.md's address) and its refusal names the field. */
const ADDRESS_FIELDS: Array<{ name: keyof Address; label: string; maxLength: number }> = [
  { name: 'name', label: 'Recipient', maxLength: 100 },
  { name: 'phone', label: 'Phone', maxLength: 32 },
  { name: 'line1', label: 'Street and number', maxLength: 200 },
  { name: 'city', label: 'City', maxLength: 100 },
  { name: 'postalCode', label: 'Postal code', maxLength: 20 },
  { name: 'country', label: 'Country (ISO code, e.g. DE)', maxLength: 2 },
];

const PURPOSES: Record<string, string> = { full: 'Full payment', deposit: 'Deposit', balance: 'Balance' };

/**
 * Where the order stands still for a moment only: in the queue, or its money going back
 * through the payment system (the order REFUNDING, a refund due or sent). The page reads it
 * again every second for a while after it is opened or acted on, so the next status shows.
 */
const SETTLING_ORDER = new Set(['ACCEPTED', 'REFUNDING']);
const SETTLING_REFUND = new Set(['PENDING', 'SENT']);
const REREAD_EVERY_MS = 1_000;
const REREAD_FOR_MS = 10_000;

const unitsLeft = (line: OrderLine) => line.qty - (line.refundedQty ?? 0);

const refundLabel = (items: ReadonlyArray<{ qty: number }>) => {
  const units = items.reduce((sum, item) => sum + item.qty, 0);
  return `Refund of ${units} unit${units === 1 ? '' : 's'}`;
};

/** The parts of refunds whose money reached the buyer: paid by the payment system, or by the shop by hand. */
const PAID_BACK_PARTS: ReadonlySet<string> = new Set(['SUCCEEDED', 'SETTLED_BY_HAND']);

/**
 * What the refunds paid back: an order's refundedCents counts a refund from when it is opened, its
 * money maybe still with the payment system, or declined by it and owed. A refund that SUCCEEDED
 * paid its amount, though a merchant may not see its parts (they name another merchant's lines too).
 */
const paidBack = (refunds: readonly Refund[]) =>
  refunds.reduce((sum, refund) => sum + (refund.status === 'SUCCEEDED' ? refund.amountCents : refund.parts.reduce((cents, part) => cents + (PAID_BACK_PARTS.has(part.status) ? part.amountCents : 0), 0)), 0);

/**
 * What is still to reach the buyer of the order's refundedCents, by the refunds listed whose money
 * is due (their parts drawn on the payments) or paid; null when they do not account for all of it
 * (a split order's child refunded before the split: that refund is its parent's; a merchant not
 * shown the parts of a refund still under way), as nothing can be said of the rest.
 */
function stillOwed(order: Order, refunds: readonly Refund[] | null): number | null {
  if (!refunds || !order.amounts) return null;
  const due = refunds.filter((refund) => refund.parts.length > 0 || refund.status === 'SUCCEEDED').reduce((sum, refund) => sum + refund.amountCents, 0);
  return due < order.amounts.refundedCents ? null : order.amounts.refundedCents - paidBack(refunds);
}

/** The statuses in which a child of a split order still refunds units: shipped, its units are returned instead. */
const CHILD_REFUNDS_UNITS = new Set(['PAID', 'IN_FULFILLMENT']);

/**
 * The lines whose units may be refunded: those with units left, and on a split order only those
 * of children not shipped yet (as last read). The api refuses a shipped child's units, and the
 * whole request with them, the units of the children it would refund included.
 */
function refundableLines(order: Order, children: readonly Order[]): OrderLine[] {
  const left = order.items.filter((line) => unitsLeft(line) > 0);
  if (order.subOrders.length === 0) return left;
  const unshipped = new Set(children.filter((child) => CHILD_REFUNDS_UNITS.has(child.status)).flatMap((child) => child.items.map((line) => line.skuId)));
  return left.filter((line) => unshipped.has(line.skuId));
}

/** A presale's balance still to pay: the order's payable less the deposit that paid it. */
function balanceDue(order: Order): number | null {
  if (order.status !== 'DEPOSIT_PAID' || !order.amounts) return null;
  // while DEPOSIT_PAID, the payment that paid the order last is its deposit
  const deposit = order.payments.find((payment) => payment.paymentId === order.payment?.paymentId);
  return deposit ? order.amounts.payableCents - deposit.amountCents : null;
}

/** The delivery address on one line, as text (JSX escapes it: what a buyer typed is never markup). */
const addressText = ({ name, phone, line1, city, postalCode, country }: Address) => `${name}, ${phone}, ${line1}, ${postalCode} ${city}, ${country}`;

export function OrderPage({ api, orderId, role }: { api: Api; orderId: string; role: 'merchant' | 'admin' }) {
  const [order, setOrder] = useState<Order | null>(null);
  const [actions, setActions] = useState<AllowedAction[]>([]);
  const [actionsProblem, setActionsProblem] = useState<string | null>(null);
  /** null: not read (yet), or not the caller's to see */
  const [refunds, setRefunds] = useState<Refund[] | null>(null);
  const [refundsProblem, setRefundsProblem] = useState<string | null>(null);
  /** a split order's child: the parent it was split from, which holds the payments (null until read, or when the caller may not read it) */
  const [payer, setPayer] = useState<Order | null>(null);
  /** a split order's children the caller may read (a merchant: its own), as last read with the order */
  const [children, setChildren] = useState<Order[]>([]);
  /** why the parent or a child could not be read, but for a 404 (not the caller's to see) */
  const [relativesProblem, setRelativesProblem] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [actionProblem, setActionProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [reason, setReason] = useDraft(orderId, 'reason', '');
  const [unitsToRefund, setUnitsToRefund] = useDraft<Record<string, number>>(orderId, 'units', {});
  const [address, setAddress] = useDraft<Address | null>(orderId, 'address', null);
  /** until when a settling order is read again by itself */
  const [rereadUntil, setRereadUntil] = useState(0);
  const reads = useRef(0);

  /**
   * The order, and apart from it what the caller may do (an order without actions, still in
   * the queue, is still shown) and its refunds and returns. A read started later (an action's,
   * a timer's) answers with what is newer: an earlier one's answers are not shown over it.
   */
  const load = useCallback(async (): Promise<Order | null> => {
    const read = ++reads.current;
    const [loaded, allowed, afterSales] = await Promise.allSettled([
      api<Order>('GET', `/v1/orders/${orderId}`),
      api<{ actions: AllowedAction[] }>('GET', `/v1/orders/${orderId}/actions`),
      api<{ items: Refund[] }>('GET', `/v1/orders/${orderId}/refunds`),
    ]);
    if (read !== reads.current) return loaded.status === 'fulfilled' ? loaded.value : null;
    if (loaded.status === 'fulfilled') {
      setOrder(loaded.value);
      setProblem(null);
    } else setProblem(problemText(loaded.reason));
    if (allowed.status === 'fulfilled') {
      setActions(allowed.value.actions);
      setActionsProblem(null);
    } else {
      setActions([]);
      setActionsProblem(problemText(allowed.reason));
    }
    if (afterSales.status === 'fulfilled') {
      setRefunds(afterSales.value.items);
      setRefundsProblem(null);
    } else if (!(afterSales.reason instanceof ApiProblem && afterSales.reason.status === 404)) {
      // a 404 (an order the caller may not see) is told once, by the order's own read
      setRefundsProblem(problemText(afterSales.reason));
    }
    return loaded.status === 'fulfilled' ? loaded.value : null;
  }, [api, orderId]);

  // each refresh (a click, an action done) reads the order's dead letters again too
  const [refreshes, setRefreshes] = useState(0);
  /** Reads the order now, and again while it settles, for a while. */
  const refresh = useCallback(() => {
    setRereadUntil(Date.now() + REREAD_FOR_MS);
    setRefreshes((n) => n + 1);
    return load();
  }, [load]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(() => {
    const settling = order !== null && (SETTLING_ORDER.has(order.status) || (refunds ?? []).some((refund) => SETTLING_REFUND.has(refund.status)));
    // an action under way reads the order itself when it is done
    if (!settling || busy || Date.now() + REREAD_EVERY_MS > rereadUntil) return;
    const timer = setTimeout(() => void load(), REREAD_EVERY_MS);
    return () => clearTimeout(timer);
  }, [order, refunds, busy, rereadUntil, load]);

  useEffect(() => {
    if (!order || (order.parentOrderId === null && order.subOrders.length === 0)) return;
    // read with each read of the order: a child's refund changes its parent's payments, a split
    // order's status derives from its children's; a later read's answer wins. A relative the
    // caller may not read (404) is left out, named alone.
    let current = true;
    const parent = order.parentOrderId === null ? null : api<Order>('GET', `/v1/orders/${order.parentOrderId}`);
    void Promise.allSettled([parent, ...order.subOrders.map((child) => api<Order>('GET', `/v1/orders/${child}`))]).then(([paying, ...read]) => {
      if (!current) return;
      if (paying!.status === 'fulfilled') setPayer(paying!.value);
      setChildren(read.flatMap((child) => (child.status === 'fulfilled' ? [child.value] : [])));
      const failed = [paying!, ...read].flatMap((one) => (one.status === 'rejected' && !(one.reason instanceof ApiProblem && one.reason.status === 404) ? [problemText(one.reason)] : []));
      setRelativesProblem(failed[0] ?? null);
    });
    return () => {
      current = false;
    };
  }, [api, order]);

  /**
   * Runs an action the state table allows, then shows what the api answered (`send`'s
   * words for it) and what became of the order, or the api's refusal.
   */
  async function perform(label: string, send: (reason: string | null) => Promise<string | null>, forget: () => void = () => undefined) {
    setBusy(true);
    setActionProblem(null);
    setDone(null);
    try {
      const answer = await send(reason.trim() === '' ? null : reason.trim());
      // what was typed for this action goes; a draft of another stays
      setReason('');
      forget();
      const changed = await refresh();
      const outcome = changed ? `the order is now ${changed.status} (${changed.merchantStatus})` : 'the order could not be read again';
      setDone(`${label}: ${answer ? `${answer}; ` : ''}${outcome}`);
    } catch (error) {
      setActionProblem(problemText(error));
      await refresh();
    } finally {
      setBusy(false);
    }
  }

  /** What an action that cannot be undone does, asked before it is sent; null for one that can be. */
  function consequenceOf({ action, href }: AllowedAction): string | null {
    if (action === 'cancel' && order?.type === 'imported') return CANCEL_IN_CHANNEL_CONSEQUENCE;
    if (action === 'approve_return') {
      const returnId = RETURN_IN_HREF.exec(href)?.[1];
      return approveReturnConsequence(refunds?.find((refund) => refund.kind === 'return' && refund.refundId === returnId) ?? null);
    }
    return CONSEQUENCES[action] ?? null;
  }

  function fire(allowed: AllowedAction, label: string) {
    const { href } = allowed;
    const consequence = consequenceOf(allowed);
    if (consequence && !window.confirm(consequence)) return;
    // the cancel route takes a reason always; the others when one is given
    const needsReason = href.endsWith('/cancel');
    return perform(label, async (given) => {
      await api<unknown>('POST', href, given !== null ? { reason: given } : needsReason ? { reason: label } : {});
      return null;
    });
  }

  function refundChosenUnits({ href }: AllowedAction, items: Array<{ skuId: string; qty: number }>) {
    const label = refundLabel(items);
    // money goes back as the full refund's does: asked first alike
    if (!window.confirm(`Refund ${items.map((item) => `${item.qty} × ${item.skuId}`).join(', ')} and pay the buyer back their share? This cannot be undone.`)) return;
    return perform(
      label,
      async (given) => {
        const body = { reason: given ?? label, items };
        // a refund sent again (after a failure, a reload, signing in again) goes under the key of the one
        // sent without an answer, edited or not: the api opens one refund under a key, never a second
        const key = readDraft<{ key: string }>(orderId, 'refund-attempt')?.key ?? idempotencyKey();
        keepDraft(orderId, 'refund-attempt', { key });
        let refund: RefundAnswer;
        try {
          refund = await api<RefundAnswer>('POST', href, body, { 'idempotency-key': key });
        } catch (error) {
          if (!(error instanceof ApiProblem && error.code === 'IDEMPOTENCY_CONFLICT')) throw error;
          // the unanswered one reached the api, in other words or units: it may have opened a refund
          keepDraft(orderId, 'refund-attempt', null);
          throw new ApiProblem(error.status, error.code, REFUND_SENT_BEFORE);
        }
        keepDraft(orderId, 'refund-attempt', null);
        return refund.replayed
          ? `nothing new was refunded: refund ${refund.refundId} (${refund.status}) was opened by this same request before`
          : `refund ${refund.refundId} is ${refund.status}`;
      },
      () => setUnitsToRefund({}),
    );
  }

  /** An admin records that the money the payment system declined to pay back went back another way (`reference`: how). */
  function settleByHand(refundId: string, reference: string) {
    if (!window.confirm(SETTLED_BY_HAND_CONSEQUENCE)) return;
    return perform('Refund settled by hand', async () => {
      const refund = await api<Refund>('POST', `/v1/orders/${orderId}/refunds/${refundId}/settle-by-hand`, { reference });
      return `refund ${refund.refundId} is ${refund.status}`;
    });
  }

  /** An admin asks the payment system again for the money it declined to pay back (under new parts), or for a refund it never confirmed (under its own). */
  function askAgain(refundId: string, unconfirmed: boolean) {
    if (!window.confirm(unconfirmed ? ASK_UNCONFIRMED_AGAIN_CONSEQUENCE : ASK_AGAIN_CONSEQUENCE)) return;
    return perform('Refund asked for again', async () => {
      const refund = await api<Refund>('POST', `/v1/orders/${orderId}/refunds/${refundId}/ask-again`, {});
      return `refund ${refund.refundId} is ${refund.status}`;
    });
  }

  /** An admin asks the payment system again about a payment it never reported on, given up on (`payerId`: the order holding it). */
  function askAboutPaymentAgain(payerId: string, paymentId: string) {
    if (!window.confirm(ASK_ABOUT_PAYMENT_AGAIN_CONSEQUENCE)) return;
    return perform('Payment asked about again', async () => {
      const payment = await api<Payment>('POST', `/v1/orders/${payerId}/payments/${paymentId}/ask-again`, {});
      return `payment ${payment.paymentId} is ${payment.status}, asked about again`;
    });
  }
  const askAboutPayment = role === 'admin' ? { busy, payment: (payerId: string, paymentId: string) => void askAboutPaymentAgain(payerId, paymentId) } : null;

  function changeAddress({ href }: AllowedAction, to: Address) {
    return perform(
      'Address changed',
      async () => {
        await api<Order>('PATCH', href, { address: to });
        return null;
      },
      () => setAddress(null),
    );
  }

  if (!order) {
    return (
      <section aria-labelledby="order-title">
        <h1 id="order-title">Order {orderId}</h1>
        {problem ? (
          <div class="problem" role="alert">
            <p>The order could not be read: {problem}</p>
            <button type="button" onClick={() => void refresh()}>
              Reload
            </button>
          </div>
        ) : (
          <p aria-live="polite">Loading…</p>
        )}
      </section>
    );
  }

  const chosenUnits = actions.find((allowed) => allowed.action === CHOSEN_UNITS);
  const newAddress = actions.find((allowed) => allowed.action === NEW_ADDRESS);
  const refundable = refundableLines(order, children);
  // only the lines shown: units typed for a line hidden since (its child shipped) are not sent
  const chosen = refundable.map((line) => ({ skuId: line.skuId, qty: unitsToRefund[line.skuId] ?? 0 })).filter((item) => item.qty > 0);
  const addressDraft = address ?? order.address;
  // the one box serves every action offered that sends a reason (the address form sends none): it holds the shortest limit among them
  const reasonMaxLength = Math.min(REASON_MAX_LENGTH_ELSE, ...actions.filter((allowed) => allowed.action !== NEW_ADDRESS).map((allowed) => REASON_MAX_LENGTH[allowed.action] ?? REASON_MAX_LENGTH_ELSE));

  return (
    <section aria-labelledby="order-title">
      <p>
        <Link to={ordersListPath()}>← Orders</Link>
      </p>
      <h1 id="order-title">Order {order.orderId}</h1>
      {problem && (
        <div class="problem" role="alert">
          <p>Could not read the order again: {problem}. What is shown is as last read.</p>
          <button type="button" onClick={() => void refresh()}>
            Reload
          </button>
        </div>
      )}
      <dl class="facts">
        <dt>Status</dt>
        <dd>
          <span class="status" data-testid="order-status">
            {order.status}
          </span>{' '}
          <button
            type="button"
            class="refresh"
            disabled={busy}
            onClick={() => {
              // what an earlier action answered is about the order as it was then: not shown beside the order read now
              setDone(null);
              setActionProblem(null);
              void refresh();
            }}
          >
            Refresh
          </button>
        </dd>
        <dt>Buyer sees</dt>
        <dd>{order.buyerStatus}</dd>
        <dt>Merchant sees</dt>
        <dd>{order.merchantStatus}</dd>
        {order.nextTimer && (
          <>
            <dt>Next by itself</dt>
            <dd data-testid="next-timer">
              <NextTimer timer={order.nextTimer} />, unless someone acts first
            </dd>
          </>
        )}
        <dt>Type</dt>
        <dd>{order.type}</dd>
        <dt>Buyer</dt>
        <dd>{order.userId}</dd>
        <dt>Delivery address</dt>
        <dd data-testid="delivery-address">{order.address ? addressText(order.address) : 'None: it ships nothing'}</dd>
        <dt>Placed</dt>
        <dd>
          <time dateTime={placedAt(order) ?? undefined}>{formatTime(placedAt(order))}</time>
          {order.createdAt === null && ': accepted, still being recorded'}
          {order.sourceChannel && order.createdAt && (
            <>
              {` in ${order.sourceChannel}; imported `}
              <time dateTime={order.createdAt}>{formatTime(order.createdAt)}</time>
            </>
          )}
        </dd>
        {order.couponCode && (
          <>
            <dt>Coupon</dt>
            <dd>{order.couponCode}</dd>
          </>
        )}
        {order.parentOrderId && (
          <>
            <dt>Split from</dt>
            <dd>
              <Link to={`/orders/${order.parentOrderId}`}>{order.parentOrderId}</Link>
            </dd>
          </>
        )}
      </dl>

      {role === 'admin' && <OrderDeadLetters api={api} orderId={order.orderId} readAgain={refreshes} stepDone={() => void refresh()} />}

      <section aria-labelledby="actions-title" class="panel">
        <h2 id="actions-title">Actions</h2>
        <NextStep order={order} childOrders={children} refunds={refunds} role={role} offered={actionsProblem ? null : actions.length > 0} now={apiNow()} />
        {actionsProblem ? (
          <p class="problem">Your actions could not be read: {actionsProblem}</p>
        ) : actions.length === 0 ? (
          <p>Nothing for you to do on it now.</p>
        ) : (
          <>
            <label for="action-reason">Reason (kept in the history, optional)</label>
            <input id="action-reason" type="text" maxLength={reasonMaxLength} value={reason} onInput={(event) => setReason(event.currentTarget.value)} />
            <div class="actions">
              {actions.filter((allowed) => allowed.action !== CHOSEN_UNITS && allowed.action !== NEW_ADDRESS).map((allowed) => (
                <button type="button" disabled={busy} onClick={() => void fire(allowed, labelOf(allowed.action, order.type))} aria-describedby={`to-${actionKey(allowed)}`}>
                  {labelOf(allowed.action, order.type)}
                  {returnNamed(allowed, actions)}
                  <span id={`to-${actionKey(allowed)}`} class="to">
                    {' '}
                    → {allowed.merchantLabel}
                  </span>
                </button>
              ))}
            </div>
            {chosenUnits && refundable.length > 0 && (
              <fieldset class="refund-units">
                <legend>Refund some units (each line's payable after its discount, by unit)</legend>
                {refundable.map((line) => (
                  <div class="inline">
                    <label for={`refund-${line.skuId}`}>
                      Units of {line.skuId} to refund (of {unitsLeft(line)} left)
                    </label>
                    <input
                      id={`refund-${line.skuId}`}
                      type="number"
                      min={0}
                      max={unitsLeft(line)}
                      step={1}
                      value={unitsToRefund[line.skuId] ?? 0}
                      onInput={(event) => setUnitsToRefund({ ...unitsToRefund, [line.skuId]: Math.max(0, Math.trunc(Number(event.currentTarget.value) || 0)) })}
                    />
                  </div>
                ))}
                <button type="button" disabled={busy || chosen.length === 0} onClick={() => void refundChosenUnits(chosenUnits, chosen)}>
                  Refund chosen units
                </button>
              </fieldset>
            )}
            {newAddress && addressDraft && (
              <form
                class="address-form"
                aria-labelledby="address-title"
                onSubmit={(event) => {
                  event.preventDefault();
                  void changeAddress(newAddress, addressDraft);
                }}
              >
                <h3 id="address-title">Delivery address (until it ships)</h3>
                {ADDRESS_FIELDS.map(({ name, label, maxLength }) => (
                  <div>
                    <label for={`address-${name}`}>{label}</label>
                    <input
                      id={`address-${name}`}
                      required
                      maxLength={maxLength}
                      value={addressDraft[name]}
                      onInput={(event) => setAddress({ ...addressDraft, [name]: event.currentTarget.value })}
                    />
                  </div>
                ))}
                <button type="submit" disabled={busy || address === null}>
                  Change address
                </button>
              </form>
            )}
          </>
        )}
        {actionProblem && <ProblemAlert>{actionProblem}</ProblemAlert>}
        {done && (
          <p class="done" role="status">
            {done}
          </p>
        )}
      </section>

      <section aria-labelledby="lines-title">
        <h2 id="lines-title">Lines</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">SKU</th>
                <th scope="col">Title</th>
                <th scope="col" class="number">
                  Qty
                </th>
                <th scope="col" class="number">
                  Units refunded
                </th>
                <th scope="col" class="number">
                  Unit price
                </th>
                <th scope="col" class="number">
                  Discount allocated
                </th>
                <th scope="col" class="number">
                  Payable
                </th>
                <th scope="col">Merchant</th>
                <th scope="col">Warehouse</th>
              </tr>
            </thead>
            <tbody>
              {order.items.map((line) => (
                <tr>
                  <th scope="row">{line.skuId}</th>
                  <td>{line.title ?? '–'}</td>
                  <td class="number">{line.qty}</td>
                  <td class="number">{line.refundedQty ?? 0}</td>
                  <td class="number">{formatCents(line.unitPriceCents)}</td>
                  <td class="number">{formatCents(line.discountCents)}</td>
                  <td class="number">{formatCents(line.payableCents)}</td>
                  <td>{line.merchantId ?? '–'}</td>
                  <td>{line.warehouseId ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {order.amounts ? (
          <dl class="facts amounts">
            <dt>Subtotal</dt>
            <dd>{formatCents(order.amounts.subtotalCents)}</dd>
            <dt>Discounts</dt>
            <dd>−{formatCents(order.amounts.discountCents)}</dd>
            <dt>Shipping</dt>
            <dd>{formatCents(order.amounts.shippingCents)}</dd>
            <dt>Payable</dt>
            <dd>
              <strong>{formatCents(order.amounts.payableCents)}</strong>
            </dd>
            <dt>Refunded</dt>
            <dd>
              {formatCents(order.amounts.refundedCents)}
              {(stillOwed(order, refunds) ?? 0) > 0 && ` (of which ${formatCents(paidBack(refunds!))} paid back so far)`}
            </dd>
          </dl>
        ) : (
          <p>Still in the queue: amounts come once the order is priced.</p>
        )}
      </section>

      {relativesProblem && <ProblemAlert>The order it was split from, or one it was split into, could not be read: {relativesProblem}</ProblemAlert>}

      {order.subOrders.length > 0 && (
        <section aria-labelledby="children-title">
          <h2 id="children-title">Child orders after the split</h2>
          <ul>
            {order.subOrders.map((child) => {
              const read = children.find((seen) => seen.orderId === child);
              return (
                <li>
                  <Link to={`/orders/${child}`}>{child}</Link>
                  {read && `: ${read.status} (${read.merchantStatus})`}
                </li>
              );
            })}
          </ul>
        </section>
      )}

      <section aria-labelledby="payment-title">
        <h2 id="payment-title">Payment</h2>
        {order.parentOrderId ? (
          <>
            <p>
              Paid with order <Link to={`/orders/${order.parentOrderId}`}>{order.parentOrderId}</Link>, which this order was split from: it holds the payments.
            </p>
            {payer && <Payments order={payer} askAgain={askAboutPayment} />}
          </>
        ) : order.sourceChannel ? (
          <PaidInChannel order={order} channel={order.sourceChannel} />
        ) : (
          <Payments order={order} askAgain={askAboutPayment} />
        )}
      </section>

      <section aria-labelledby="shipments-title">
        <h2 id="shipments-title">Shipments</h2>
        {order.shipments.length === 0 ? (
          <p>No shipments{order.subOrders.length > 0 ? ' yet: each child ships its own parcel' : ''}.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Shipment</th>
                {order.subOrders.length > 0 && <th scope="col">Child order</th>}
                <th scope="col">Warehouse</th>
                <th scope="col">Tracking</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {order.shipments.map((shipment) => (
                <tr>
                  <th scope="row">{shipment.shipmentId}</th>
                  {order.subOrders.length > 0 && (
                    <td>
                      <Link to={`/orders/${shipment.orderId}`}>{shipment.orderId}</Link>
                    </td>
                  )}
                  <td>{shipment.warehouseId}</td>
                  <td>{shipment.trackingNo ?? '–'}</td>
                  <td>
                    {shipment.status}
                    {shipment.changeRefusedAt && <> (a change refused by the warehouse at {formatTime(shipment.changeRefusedAt)}: the parcel had left as handed over)</>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {(refunds || refundsProblem) && (
        <section aria-labelledby="after-sales-title">
          <h2 id="after-sales-title">Refunds and returns</h2>
          {refundsProblem && <p class="problem">Refunds and returns could not be read: {refundsProblem}</p>}
          {refunds && <Refunds orderId={order.orderId} refunds={refunds} settle={role === 'admin' ? { busy, byHand: (refundId, reference) => void settleByHand(refundId, reference), askAgain: (refundId, unconfirmed) => void askAgain(refundId, unconfirmed) } : null} />}
        </section>
      )}

      <section aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        <ol class="timeline" aria-label="Timeline">
          {order.history.map((step) => (
            <li>
              <time dateTime={step.at}>{formatTime(step.at)}</time>
              <span>
                <strong>{step.action}</strong> by {step.actor}: {step.from ?? '(new)'} → {step.to}
              </span>
              {step.detail && <span class="detail">{step.detail}</span>}
            </li>
          ))}
        </ol>
      </section>
    </section>
  );
}

/**
 * An imported order was paid in its sales channel, at the channel's prices (its payable): this
 * shop's payment system took nothing and holds no payment for it, and never pays anything of it
 * back (docs/order-centre.md). Not "Not paid.": staff would chase the buyer or refuse a return.
 */
function PaidInChannel({ order, channel }: { order: Order; channel: string }) {
  return (
    <p>
      Paid in its sales channel, {channel}
      {order.externalOrderId && ` (its order ${order.externalOrderId})`}
      {order.amounts && `: ${formatCents(order.amounts.payableCents)}`}, not through this shop's payment system, which holds no payment for it; any refund is the channel's too.
    </p>
  );
}

/**
 * What paid the order, attempt by attempt; a presale's balance still due and its deadline.
 * `askAgain`: an admin's, for a payment the payment system never reported on and nothing asks
 * about any more (its payer, the order holding it, and its id).
 */
function Payments({ order, askAgain }: { order: Order; askAgain: { busy: boolean; payment: (payerId: string, paymentId: string) => void } | null }) {
  if (order.payments.length === 0) {
    // a merchant's view of an order holding other merchants' lines too keeps only the payment that paid it
    return order.payment ? (
      <dl class="facts">
        <dt>Method</dt>
        <dd>{order.payment.method}</dd>
        <dt>Transaction</dt>
        <dd>{order.payment.transactionId ?? '–'}</dd>
        <dt>Paid</dt>
        <dd>{formatTime(order.payment.paidAt)}</dd>
      </dl>
    ) : (
      <p>Not paid.</p>
    );
  }
  const balance = balanceDue(order);
  // the money may have been taken, or may yet be, and is neither applied nor given back
  const givenUp = order.payments.filter(paymentGivenUp);
  return (
    <>
      {givenUp.length > 0 && (
        <div class="problem" role="alert">
          <p>The payment system never reported on these payments; nothing asks about them any more, and the buyer may or may not have been charged:</p>
          <ul>
            {givenUp.map((payment) => (
              <li>
                {formatCents(payment.amountCents)} of payment {payment.paymentId}, first sent <time dateTime={payment.firstSentAt ?? undefined}>{formatTime(payment.firstSentAt ?? null)}</time>
              </li>
            ))}
          </ul>
          <p>
            Ask the payment provider about each payment. Once it has decided it, or cannot tell, {askAgain ? 'ask' : 'have an admin ask'} the payment system again: under the payment's own id, it charges nothing twice (runbook:
            PaymentsUnconfirmedGivenUp, docs/operations.md).
          </p>
          {askAgain &&
            givenUp.map((payment) => (
              <button type="button" disabled={askAgain.busy} onClick={() => askAgain.payment(order.orderId, payment.paymentId)}>
                Ask the payment system again about payment {payment.paymentId}
              </button>
            ))}
        </div>
      )}
      {(order.payment || balance !== null) && (
        <dl class="facts">
          {order.payment && (
            <>
              <dt>Method</dt>
              <dd>{order.payment.method}</dd>
            </>
          )}
          {balance !== null && (
            <>
              <dt>Balance due</dt>
              <dd>
                <strong>{formatCents(balance)}</strong> by <time dateTime={order.balanceDeadline ?? undefined}>{formatTime(order.balanceDeadline)}</time>
              </dd>
            </>
          )}
        </dl>
      )}
      <div class="table-wrap">
        <table>
          <caption>Payments, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">Payment</th>
              <th scope="col">For</th>
              <th scope="col" class="number">
                Amount
              </th>
              <th scope="col">Status</th>
              <th scope="col">Transaction</th>
              <th scope="col">Paid</th>
            </tr>
          </thead>
          <tbody>
            {order.payments.map((payment) => (
              <tr>
                <th scope="row">{payment.paymentId}</th>
                <td>{PURPOSES[payment.purpose] ?? payment.purpose}</td>
                <td class="number">{formatCents(payment.amountCents)}</td>
                <td>{payment.status}</td>
                <td>{payment.transactionId ?? '–'}</td>
                <td>{formatTime(payment.paidAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/**
 * The refunds and returns of the order (a split order's: its children's), each with its units, its
 * money and where that goes back to. `settle`: an admin's actions on a refund the payment system
 * declined: ask it again, or record that the shop paid the buyer back another way.
 */
function Refunds({
  orderId,
  refunds,
  settle,
}: {
  orderId: string;
  refunds: Refund[];
  settle: { busy: boolean; byHand: (refundId: string, reference: string) => void; askAgain: (refundId: string, unconfirmed: boolean) => void } | null;
}) {
  const [references, setReferences] = useState<Record<string, string>>({});
  if (refunds.length === 0) return <p>No refunds or returns.</p>;
  // nothing retries a part the payment system declined on its own: the money is owed until someone settles it
  const declined = refunds.flatMap((refund) => refund.parts.filter((part) => part.status === 'FAILED').map((part) => ({ refund, part })));
  const declinedRefunds = refunds.filter((refund) => refund.parts.some((part) => part.status === 'FAILED'));
  // nor one it accepted and never confirmed, past the sweep's asking: the buyer may have the money, or not
  const unconfirmed = refunds.flatMap((refund) => refund.parts.filter(confirmationGivenUp).map((part) => ({ refund, part })));
  const unconfirmedRefunds = refunds.filter((refund) => refund.parts.some(confirmationGivenUp));
  return (
    <div class="table-wrap">
      {unconfirmed.length > 0 && (
        <div class="problem" role="alert">
          <p>The payment system accepted these refunds and never confirmed them; nothing asks about them any more, and the buyer may or may not have been paid back:</p>
          <ul>
            {unconfirmed.map(({ refund, part }) => (
              <li>
                {formatCents(part.amountCents)} of refund {refund.refundId} to payment {part.paymentId} (part {part.partId}), sent{' '}
                <time dateTime={part.sentAt}>{formatTime(part.sentAt)}</time>
              </li>
            ))}
          </ul>
          <p>
            Ask the payment provider about each part. Once it has the refund, or cannot tell, {settle ? 'ask' : 'have an admin ask'} the payment system again: under the part's own id, it pays at most once (runbook:
            RefundsUnconfirmedGivenUp, docs/operations.md).
          </p>
          {settle &&
            unconfirmedRefunds.map((refund) => (
              <button type="button" disabled={settle.busy} onClick={() => settle.askAgain(refund.refundId, true)}>
                Ask the payment system again for refund {refund.refundId}
              </button>
            ))}
        </div>
      )}
      {declined.length > 0 && (
        <div class="problem" role="alert">
          <p>The payment system declined to pay back, so this money is still owed to the buyer:</p>
          <ul>
            {declined.map(({ refund, part }) => (
              <li>
                {formatCents(part.amountCents)} of refund {refund.refundId} to payment {part.paymentId} (part {part.partId})
              </li>
            ))}
          </ul>
          <p>
            Ask the payment system again once what made it decline is fixed, or pay the buyer back another way{settle ? ' and record it here' : ', and have an admin record it'}{' '}
            (runbook: "A refund failed", docs/operations.md).
          </p>
          {settle &&
            declinedRefunds.map((refund) => (
              <form
                class="settle-form"
                onSubmit={(event) => {
                  event.preventDefault();
                  settle.byHand(refund.refundId, (references[refund.refundId] ?? '').trim());
                }}
              >
                <label for={`settled-${refund.refundId}`}>How refund {refund.refundId} was paid back (a transfer's reference)</label>
                <input
                  id={`settled-${refund.refundId}`}
                  required
                  maxLength={128}
                  pattern=".*\S.*"
                  value={references[refund.refundId] ?? ''}
                  onInput={(event) => setReferences({ ...references, [refund.refundId]: event.currentTarget.value })}
                />
                <button type="submit" disabled={settle.busy}>
                  Record as paid back by hand
                </button>
                <button type="button" disabled={settle.busy} onClick={() => settle.askAgain(refund.refundId, false)}>
                  Ask the payment system again
                </button>
              </form>
            ))}
        </div>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Refund</th>
            <th scope="col">Kind</th>
            <th scope="col">Of order</th>
            <th scope="col">Status</th>
            <th scope="col">Reason</th>
            <th scope="col">Units</th>
            <th scope="col" class="number">
              Amount
            </th>
            <th scope="col">Paid back to</th>
            <th scope="col">Opened</th>
            <th scope="col">Last change</th>
          </tr>
        </thead>
        <tbody>
          {refunds.map((refund) => (
            <tr>
              <th scope="row">{refund.refundId}</th>
              <td>{refund.kind === 'return' ? 'Return' : 'Refund'}</td>
              <td>{refund.orderId === orderId ? 'this order' : <Link to={`/orders/${refund.orderId}`}>{refund.orderId}</Link>}</td>
              <td>{refund.status}</td>
              <td>{refund.reason}</td>
              <td>
                {refund.items.map((item) => `${item.skuId} ×${item.qty}`).join(', ')}
                {refund.restockHeld && ' (neither back on sale nor paid back: in the parcel the warehouse holds, until it takes them out)'}
                {refund.status === 'WITHDRAWN' && ' (the parcel left with them before the warehouse took them out: nothing paid back, the order ships)'}
              </td>
              <td class="number">{formatCents(refund.amountCents)}</td>
              <td>
                {refund.parts.length === 0 ? (
                  // a return under review, or a refund whose parts are another merchant's business too
                  '–'
                ) : (
                  <ul class="plain">
                    {refund.parts.map((part) => (
                      <li>
                        payment {part.paymentId}: {formatCents(part.amountCents)},{' '}
                        {part.status === 'FAILED' ? (
                          <strong>FAILED: declined, still owed</strong>
                        ) : part.status === 'SETTLED_BY_HAND' ? (
                          `paid back by hand (${part.settledReference ?? 'no reference'})`
                        ) : part.status === 'ASKED_AGAIN' ? (
                          `declined, asked for again as part ${part.askedAgainAs ?? '?'}`
                        ) : confirmationGivenUp(part) ? (
                          <strong>SENT, never confirmed: asked about no more</strong>
                        ) : (
                          part.status
                        )}
                        {part.paidAfterOwedElsewhereAt && <strong> and paid by the payment system too, {formatTime(part.paidAfterOwedElsewhereAt)}: the buyer was paid back twice</strong>}
                      </li>
                    ))}
                  </ul>
                )}
              </td>
              <td>{formatTime(refund.createdAt)}</td>
              <td>{formatTime(refund.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
