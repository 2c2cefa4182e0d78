import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** Path routing under /console; the api answers index.html for every deep link. */
export const BASE = '/console';

export type Route =
  | { page: 'orders' }
  | { page: 'order'; orderId: string }
  | { page: 'flash-sales' }
  | { page: 'after-sales' }
  | { page: 'dead-letters' };

export function routeOf(pathname: string): Route {
  const path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  // an order run in a stock bucket other than the first carries its bucket's suffix (-g2)
  const order = /^\/orders\/([0-9A-Za-z]+(?:-g[1-9][0-9]?)?)\/?$/.exec(path);
  if (order?.[1]) return { page: 'order', orderId: order[1] };
  if (/^\/flash-sales\/?$/.test(path)) return { page: 'flash-sales' };
  if (/^\/after-sales\/?$/.test(path)) return { page: 'after-sales' };
  if (/^\/dead-letters\/?$/.test(path)) return { page: 'dead-letters' };
  return { page: 'orders' };
}

let ordersSearch = '';

/** The order list's search as last shown (`?userId=ivy`): an order's way back to the list keeps it. */
export function rememberOrdersSearch(search: string): void {
  ordersSearch = search;
}

/** The order list, with the search it last showed. */
export const ordersListPath = (): string => `/${ordersSearch}`;

export function navigate(path: string): void {
  history.pushState(null, '', `${BASE}${path}`);
  dispatchEvent(new PopStateEvent('popstate'));
}

let arrivals = 0;

/**
 * The page the address names, and which arrival at it this is: a page is drawn anew from its
 * address on each (the top bar's Orders, followed from a searched list, shows every order).
 */
export function useRoute(): Route & { arrival: number } {
  const [route, setRoute] = useState(() => ({ ...routeOf(location.pathname), arrival: arrivals }));
  useEffect(() => {
    const follow = () => setRoute({ ...routeOf(location.pathname), arrival: ++arrivals });
    addEventListener('popstate', follow);
    return () => removeEventListener('popstate', follow);
  }, []);
  return route;
}

/** A real link (open in a new tab works), followed in place on a plain click. */
export function Link({ to, children, ...rest }: { to: string; children: ComponentChildren; 'aria-current'?: 'page' }) {
  return (
    <a
      href={`${BASE}${to}`}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(to);
      }}
      {...rest}
    >
      {children}
    </a>
  );
}
