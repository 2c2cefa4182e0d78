import type { Api } from './api.js';
import { OrderTable, orderSearchPath, usePagedOrders } from './orders-page.js';
import type { Session } from './session.js';

/** The after-sales statuses in which the order waits for someone: a merchant's review, a parcel, a refund. */
const WAITING = [
  { status: 'RETURN_REQUESTED', title: 'Returns to review' },
  { status: 'RETURNING', title: 'Returns on their way back' },
  { status: 'REFUNDING', title: 'Refunds being paid out' },
];

export function AfterSalesPage({ api, session }: { api: Api; session: Session }) {
  return (
    <section aria-labelledby="after-sales-title">
      <h1 id="after-sales-title">After-sales</h1>
      <p class="hint">Open an order to approve or refuse its return, to close one whose parcel never came back, or to follow its refund.</p>
      {WAITING.map(({ status, title }) => (
        <WaitingOrders key={status} api={api} session={session} status={status} title={title} />
      ))}
    </section>
  );
}

function WaitingOrders({ api, session, status, title }: { api: Api; session: Session; status: string; title: string }) {
  // a split order takes its children's after-sales status: each return is listed once, on the child it belongs to
  const pages = usePagedOrders(api, (cursor) => orderSearchPath(session, { status, limit: 20 }, cursor, { leaf: true }));
  const id = `waiting-${status}`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      <button type="button" disabled={pages.loading} onClick={pages.reload} aria-describedby={id}>
        Refresh
      </button>
      {pages.problem && (
        <p class="problem" role="alert">
          Page {pages.number} could not be read: {pages.problem}
        </p>
      )}
      {pages.shown && <OrderTable orders={pages.shown.orders.items} caption={`${title}, page ${pages.shown.number}`} />}
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
