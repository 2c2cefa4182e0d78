import type { Api } from './api.js';
import { OrderTable, orderSearchPath, usePagedOrders } from './orders-page.js';
import { ProblemAlert } from './problem-alert.js';
import type { Session } from './session.js';

interface WaitingList {
  id: string;
  title: string;
  status?: string;
  /** orders owing a refund the payment system declined, whatever their status (an admin's list: an admin settles those) */
  refundDeclined?: boolean;
  /** orders holding a refund the payment system accepted and never confirmed, asked about no more (an admin asks again) */
  refundUnconfirmed?: boolean;
  /** orders holding a payment the payment system never reported on, asked about no more (an admin asks again): the payer, split or not */
  paymentUnconfirmed?: boolean;
}

/** The after-sales statuses in which the order waits for someone: a merchant's review, a parcel, a refund. */
const WAITING: WaitingList[] = [
  { id: 'RETURN_REQUESTED', status: 'RETURN_REQUESTED', title: 'Returns to review' },
  { id: 'RETURNING', status: 'RETURNING', title: 'Returns on their way back' },
  { id: 'REFUNDING', status: 'REFUNDING', title: 'Refunds being paid out' },
];
const DECLINED: WaitingList = { id: 'REFUND_DECLINED', title: 'Refunds the payment system declined (still owed)', refundDeclined: true };
const UNCONFIRMED: WaitingList = { id: 'REFUND_UNCONFIRMED', title: 'Refunds the payment system never confirmed (asked about no more)', refundUnconfirmed: true };
const PAYMENTS_UNCONFIRMED: WaitingList = { id: 'PAYMENT_UNCONFIRMED', title: 'Payments the payment system never reported on (asked about no more)', paymentUnconfirmed: true };

export function AfterSalesPage({ api, session }: { api: Api; session: Session }) {
  const lists = session.role === 'admin' ? [...WAITING, DECLINED, UNCONFIRMED, PAYMENTS_UNCONFIRMED] : WAITING;
  return (
    <section aria-labelledby="after-sales-title">
      <h1 id="after-sales-title">After-sales</h1>
      <p class="hint">Open an order to approve or refuse its return, to close one whose parcel never came back, or to follow its refund.</p>
      {lists.map((list) => (
        <WaitingOrders key={list.id} api={api} session={session} list={list} />
      ))}
    </section>
  );
}

function WaitingOrders({ api, session, list: { id: listId, title, status, refundDeclined = false, refundUnconfirmed = false, paymentUnconfirmed = false } }: { api: Api; session: Session; list: WaitingList }) {
  // a split order takes its children's after-sales status: each return is listed once, on the child it belongs to;
  // a refund or a payment is listed on the order holding it, split or not (a refund asked before the split is its order's)
  const pages = usePagedOrders(api, (cursor) => orderSearchPath(session, { status, limit: 20 }, cursor, { leaf: status !== undefined, refundDeclined, refundUnconfirmed, paymentUnconfirmed }));
  const id = `waiting-${listId}`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <button type="button" disabled={pages.loading} onClick={pages.reload} aria-describedby={id}>
        Refresh
      </button>
      {pages.problem && <ProblemAlert>Page {pages.number} could not be read: {pages.problem}</ProblemAlert>}
      {pages.shown && <OrderTable orders={pages.shown.orders.items} caption={`${title}, page ${pages.shown.number}`} nextTimers />}
      {(pages.number > 1 || pages.next !== null) && (
        <nav class="pager" aria-label={`Pages of ${title.toLowerCase()}`}>
          <button type="button" disabled={pages.number === 1 || pages.loading} onClick={pages.previous}>
            Previous page
          </button>
          <button type="button" disabled={pages.next === null} onClick={pages.next ?? undefined}>
            Next page
          </button>
        </nav>
      )}
    </section>
  );
}
