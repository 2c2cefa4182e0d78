import { useEffect, useState } from 'preact/hooks';
import { problemText, type Api, type OrderPage } from './api.js';
import { OrderTable, orderSearchPath } from './orders-page.js';
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
      <p class="hint">Open an order to approve or refuse its return, or to follow its refund.</p>
      {WAITING.map(({ status, title }) => (
        <WaitingOrders key={status} api={api} session={session} status={status} title={title} />
      ))}
    </section>
  );
}

function WaitingOrders({ api, session, status, title }: { api: Api; session: Session; status: string; title: string }) {
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [page, setPage] = useState<OrderPage | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const cursor = cursors.at(-1) ?? null;

  useEffect(() => {
    let current = true;
    api<OrderPage>('GET', orderSearchPath(session, { status, limit: 20 }, cursor))
      .then((answer) => current && setPage(answer))
      .catch((error: unknown) => current && setProblem(problemText(error)));
    return () => {
      current = false;
    };
  }, [api, session, status, cursor]);

  const id = `waiting-${status}`;
  return (
    <section aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {problem && (
        <p class="problem" role="alert">
          {problem}
        </p>
      )}
      {page && <OrderTable orders={page.items} caption={`${title}, page ${cursors.length}`} />}
      {(cursors.length > 1 || page?.nextCursor) && (
        <nav class="pager" aria-label={`Pages of ${title.toLowerCase()}`}>
          <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
            Previous page
          </button>
          <button type="button" disabled={!page?.nextCursor} onClick={() => page?.nextCursor && setCursors([...cursors, page.nextCursor])}>
            Next page
          </button>
        </nav>
      )}
    </section>
  );
}
