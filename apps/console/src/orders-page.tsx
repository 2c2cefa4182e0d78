import { useEffect, useState } from 'preact/hooks';
import { formatTime, placedAt, problemText, query, type Api, type Order, type OrderPage } from './api.js';
import { formatCents } from './money.js';
import { NextTimer } from './next-timer.js';
import { ProblemAlert } from './problem-alert.js';
import { Link, rememberOrdersSearch } from './route.js';
import type { Session } from './session.js';

/** The statuses every list filters by: not ACCEPTED, which an order leaves as it is persisted (ACCEPTED_BY_BUYER). */
export const STATUSES = [
  'PENDING_PAYMENT',
  'PENDING_DEPOSIT',
  'DEPOSIT_PAID',
  'PAID',
  'IN_FULFILLMENT',
  'SHIPPED',
  'DELIVERED',
  'COMPLETED',
  'CANCELLED',
  'EXPIRED',
  'DEPOSIT_FORFEITED',
  'REFUNDING',
  'REFUNDED',
  'RETURN_REQUESTED',
  'RETURNING',
  'RETURNED',
];
const TYPES = ['standard', 'flash_sale', 'presale', 'virtual', 'imported'];
/** An admin's search by buyer lists the buyer's orders still in the queue too, and these alone with this status; no other list holds them. */
const ACCEPTED_BY_BUYER = 'ACCEPTED';

/** A search for orders still in the queue that names no buyer: it would list none, whatever the queue holds. */
function queuedProblem({ status, userId }: Pick<Filter, 'status' | 'userId'>): string | null {
  return status === ACCEPTED_BY_BUYER && userId.trim() === '' ? 'orders still in the queue (ACCEPTED) are listed by their buyer: name one' : null;
}

interface Filter {
  status: string;
  type: string;
  userId: string;
  skuId: string;
  from: string;
  to: string;
  limit: number;
}

const NO_FILTER: Filter = { status: '', type: '', userId: '', skuId: '', from: '', to: '', limit: 20 };
const PAGE_SIZES = [20, 50, 100];

/**
 * The search the list's address holds (`/console/?userId=ivy&status=PAID`): a reload, or Back
 * from one of its orders, shows the same search.
 */
function filterOf(search: string): Filter {
  const params = new URLSearchParams(search);
  const text = (name: keyof Filter) => params.get(name) ?? '';
  // an address edited by hand to a day that is none searches no day, rather than breaking the page
  const day = (name: 'from' | 'to') => (isDay(text(name)) ? text(name) : '');
  const limit = Number(params.get('limit'));
  return { status: text('status'), type: text('type'), userId: text('userId'), skuId: text('skuId'), from: day('from'), to: day('to'), limit: PAGE_SIZES.includes(limit) ? limit : NO_FILTER.limit };
}

/** The days the api searches (years 1000 to 9999); a date box takes years of up to six digits. */
const FIRST_DAY = '1000-01-01';
const LAST_DAY = '9999-12-31';

/** Whether a date box's value is a day the api searches. */
const isDay = (day: string) => /^\d{4}-\d{2}-\d{2}$/.test(day) && day >= FIRST_DAY && day <= LAST_DAY && Number.isFinite(Date.parse(`${day}T00:00:00Z`));

/** Why the search's days cannot be searched, or null when they can (an empty box searches no day). */
function dayProblem({ from, to }: Pick<Filter, 'from' | 'to'>): string | null {
  const notADay = (
    [
      ['Placed from', from],
      ['Placed until', to],
    ] as const
  ).find(([, day]) => day !== '' && !isDay(day));
  if (notADay) return `${notADay[0]}: ${notADay[1]} is not a day from ${FIRST_DAY} to ${LAST_DAY}`;
  if (from !== '' && to !== '' && from > to) return `Placed from (${from}) is after Placed until (${to})`;
  return null;
}

/**
 * The cursors of the pages after the first up to the one shown, as the list's address holds them
 * (`pages=<cursor>.<cursor>`: base64url has no full stop), so a reload, or Back from one of its
 * orders, shows the same page and Previous still goes back through the ones before.
 */
function cursorsOf(search: string): Array<string | null> {
  const kept = new URLSearchParams(search).get('pages');
  return [null, ...(kept ? kept.split('.').filter((cursor) => /^[A-Za-z0-9_-]+$/.test(cursor)) : [])];
}

/** Writes the search and the page shown into the list's address, in place: Back still leaves the list. */
function keepSearch(filter: Filter, cursors: ReadonlyArray<string | null>): void {
  const pages = cursors.filter((cursor): cursor is string => cursor !== null).join('.');
  history.replaceState(history.state, '', `${location.pathname}${query({ ...filter, limit: filter.limit === NO_FILTER.limit ? undefined : filter.limit, pages })}`);
}

/** A date input's day as the instant it starts (UTC), `days` later. */
const dayStart = (day: string, days = 0) => (day === '' ? undefined : new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString());

/**
 * Admins search every order (GET /v1/admin/orders); merchants list the orders holding their
 * SKUs (GET /v1/orders). One page at a time, however many orders there are.
 */
export function orderSearchPath(session: Session, filter: Partial<Filter>, cursor: string | null, { leaf = false, refundDeclined = false, refundUnconfirmed = false, paymentUnconfirmed = false } = {}): string {
  const common = { status: filter.status, type: filter.type, limit: filter.limit ?? 20, cursor: cursor ?? undefined };
  // a merchant's list holds no split order, only the children with its SKUs
  if (session.role === 'merchant') return `/v1/orders${query(common)}`;
  const only = { leaf: leaf ? 'true' : undefined, refundDeclined: refundDeclined ? 'true' : undefined, refundUnconfirmed: refundUnconfirmed ? 'true' : undefined, paymentUnconfirmed: paymentUnconfirmed ? 'true' : undefined };
  // until the last day the api searches: no end (the day after it is past the dates the api takes)
  const createdTo = filter.to === LAST_DAY ? undefined : dayStart(filter.to ?? '', 1);
  return `/v1/admin/orders${query({ ...common, userId: filter.userId, skuId: filter.skuId, createdFrom: dayStart(filter.from ?? ''), createdTo, ...only })}`;
}

/** A list's page as read: the page number it was read for, so its caption and pager never describe another. */
interface ShownPage {
  orders: OrderPage;
  number: number;
}

/**
 * A list of orders one page at a time, from `pathOf(cursor)`, starting at the page the
 * cursors `from` lead to (page 1 by default). `reload` reads it again from page 1 (Search,
 * Clear, Refresh: the same filter too). Next and Previous move only from the page shown, so
 * a click while a page loads skips nothing; a page that cannot be read is shown as its
 * problem, not as the page before under the new page's caption.
 */
export function usePagedOrders(api: Api, pathOf: (cursor: string | null) => string, from: Array<string | null> = [null]) {
  // the cursors of the pages up to this one, for "Previous page"
  const [cursors, setCursors] = useState<Array<string | null>>(from);
  const [reloads, setReloads] = useState(0);
  const [shown, setShown] = useState<ShownPage | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const number = cursors.length;
  const path = pathOf(cursors.at(-1) ?? null);

  useEffect(() => {
    let current = true;
    setLoading(true);
    setProblem(null);
    api<OrderPage>('GET', path)
      .then((orders) => current && setShown({ orders, number }))
      .catch((error: unknown) => {
        if (!current) return;
        setShown(null);
        setProblem(problemText(error));
      })
      .finally(() => current && setLoading(false));
    return () => {
      current = false;
    };
  }, [api, path, number, reloads]);

  const nextCursor = !loading && shown?.number === number ? shown.orders.nextCursor : null;
  return {
    shown,
    problem,
    cursors,
    number,
    loading,
    reload: () => {
      setCursors([null]);
      setReloads((n) => n + 1);
    },
    previous: () => setCursors((now) => (now.length > 1 ? now.slice(0, -1) : now)),
    // from the page shown only: a second click before the next page arrives finds the list moved on
    next: nextCursor === null ? null : () => setCursors((now) => (now.length === number ? [...now, nextCursor] : now)),
  };
}

export function OrdersPage({ api, session }: { api: Api; session: Session }) {
  const [draft, setDraft] = useState<Filter>(() => filterOf(location.search));
  const [filter, setFilter] = useState<Filter>(() => filterOf(location.search));
  const [filterProblem, setFilterProblem] = useState<string | null>(null);
  const pages = usePagedOrders(api, (cursor) => orderSearchPath(session, filter, cursor), cursorsOf(location.search));
  // the address holds the search and the page shown, and an order's way back to the list keeps them
  useEffect(() => {
    keepSearch(filter, pages.cursors);
    rememberOrdersSearch(location.search);
  }, [filter, pages.cursors]);

  const field = (name: keyof Filter) => ({
    id: `filter-${name}`,
    name,
    value: draft[name],
    onInput: (event: { currentTarget: { value: string } }) => setDraft({ ...draft, [name]: name === 'limit' ? Number(event.currentTarget.value) : event.currentTarget.value }),
  });
  const admin = session.role === 'admin';

  return (
    <section aria-labelledby="orders-title">
      <h1 id="orders-title">Orders</h1>
      <form
        class="filters"
        aria-label="Search orders"
        onSubmit={(event) => {
          event.preventDefault();
          const problem = dayProblem(draft) ?? queuedProblem(draft);
          setFilterProblem(problem);
          if (problem) return;
          setFilter(draft);
          pages.reload();
        }}
      >
        <div>
          <label for="filter-status">Status</label>
          <select {...field('status')}>
            <option value="">Any</option>
            {admin && <option value={ACCEPTED_BY_BUYER}>{ACCEPTED_BY_BUYER} (still in the queue: by buyer)</option>}
            {STATUSES.map((status) => (
              <option value={status}>{status}</option>
            ))}
          </select>
        </div>
        <div>
          <label for="filter-type">Order type</label>
          <select {...field('type')}>
            <option value="">Any</option>
            {TYPES.map((type) => (
              <option value={type}>{type}</option>
            ))}
          </select>
        </div>
        {admin && (
          <>
            <div>
              <label for="filter-userId">Buyer</label>
              <input type="search" autoComplete="off" {...field('userId')} />
            </div>
            <div>
              <label for="filter-skuId">SKU</label>
              <input type="search" autoComplete="off" {...field('skuId')} />
            </div>
            <div>
              <label for="filter-from">Placed from (UTC day)</label>
              <input type="date" aria-describedby="placed-days" {...field('from')} />
            </div>
            <div>
              <label for="filter-to">Placed until (UTC day)</label>
              <input type="date" aria-describedby="placed-days" {...field('to')} />
            </div>
          </>
        )}
        <div>
          <label for="filter-limit">Per page</label>
          <select {...field('limit')}>
            {PAGE_SIZES.map((size) => (
              <option value={size}>{size}</option>
            ))}
          </select>
        </div>
        <div class="form-buttons">
          <button type="submit">Search</button>
          <button
            type="button"
            onClick={() => {
              setDraft(NO_FILTER);
              setFilterProblem(null);
              setFilter(NO_FILTER);
              pages.reload();
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {filterProblem && <ProblemAlert>Not searched: {filterProblem}.</ProblemAlert>}
      {admin ? (
        <p id="placed-days" class="hint">
          The days search when an order was written here: an imported order is found by the day it was imported.
        </p>
      ) : (
        <p class="hint">Merchants see the orders holding their SKUs and filter them by status and type; buyer, SKU and date search is for admins.</p>
      )}
      {pages.problem && <ProblemAlert>Page {pages.number} could not be read: {pages.problem}</ProblemAlert>}
      {pages.shown && <OrderTable orders={pages.shown.orders.items} caption={`Orders, page ${pages.shown.number}`} />}
      <nav class="pager" aria-label="Pages of orders" aria-busy={pages.loading}>
        <button type="button" disabled={pages.number === 1 || pages.loading} onClick={pages.previous}>
          Previous page
        </button>
        <span aria-live="polite">
          Page {pages.number}
          {pages.loading ? ' (loading…)' : ''}
        </span>
        <button type="button" disabled={pages.next === null} onClick={pages.next ?? undefined}>
          Next page
        </button>
      </nav>
    </section>
  );
}

/**
 * A split order and its child orders each hold a payable, the split order's being its children's
 * added up: each row says which it is, so an operator adding up a page counts no money twice.
 */
/** `nextTimers`: a column saying what the system does to each order by itself next, and from when (the after-sales lists: when an unreviewed return is approved). */
export function OrderTable({ orders, caption, nextTimers = false }: { orders: Order[]; caption: string; nextTimers?: boolean }) {
  if (orders.length === 0) return <p class="empty">No orders match.</p>;
  const splitShown = orders.some((order) => order.subOrders.length > 0 || order.parentOrderId !== null);
  return (
    <div class="table-wrap">
      <table aria-describedby={splitShown ? 'split-payables' : undefined}>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Order</th>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Buyer sees</th>
            <th scope="col">Merchant sees</th>
            {nextTimers && <th scope="col">Next by itself</th>}
            <th scope="col">Buyer</th>
            <th scope="col">SKUs</th>
            <th scope="col" class="number">
              Payable
            </th>
            <th scope="col">Placed</th>
          </tr>
        </thead>
        <tbody>
          {orders.map((order) => (
            <tr key={order.orderId}>
              <th scope="row">
                <Link to={`/orders/${order.orderId}`}>{order.orderId}</Link>
                <SplitRelation order={order} />
              </th>
              <td>{order.type}</td>
              <td>
                <span class="status">{order.status}</span>
              </td>
              <td>{order.buyerStatus}</td>
              <td>{order.merchantStatus}</td>
              {nextTimers && <td>{order.nextTimer ? <NextTimer timer={order.nextTimer} /> : '–'}</td>}
              <td>{order.userId}</td>
              <td>{order.items.map((item) => `${item.skuId} ×${item.qty}`).join(', ')}</td>
              <td class="number">
                {formatCents(order.amounts?.payableCents)}
                {order.parentOrderId !== null && <span class="relation">also counted in its split order's</span>}
                {order.subOrders.length > 0 && <span class="relation">its child orders' added up</span>}
              </td>
              <td>
                <time dateTime={placedAt(order) ?? undefined}>{formatTime(placedAt(order))}</time>
                {order.sourceChannel && order.createdAt && (
                  <span class="relation">
                    in {order.sourceChannel}; imported <time dateTime={order.createdAt}>{formatTime(order.createdAt)}</time>
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {splitShown && (
        <p id="split-payables" class="hint">
          A split order's payable is its child orders' payables added up: count either the split order or its children, not both.
        </p>
      )}
    </div>
  );
}

/** Which side of a split the order is on: split into child orders, or one of them. */
function SplitRelation({ order }: { order: Order }) {
  if (order.subOrders.length > 0) {
    return (
      <span class="relation">
        split into {order.subOrders.length} child order{order.subOrders.length === 1 ? '' : 's'}
      </span>
    );
  }
  if (order.parentOrderId === null) return null;
  return (
    <span class="relation">
      part of <Link to={`/orders/${order.parentOrderId}`}>{order.parentOrderId}</Link>
    </span>
  );
}
