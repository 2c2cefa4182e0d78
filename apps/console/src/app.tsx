import { useMemo, useRef, useState } from 'preact/hooks';
import { AfterSalesPage } from './after-sales-page.js';
import { apiFor } from './api.js';
import { DeadLettersPage } from './dead-letters-page.js';
import { FlashSalesPage } from './flash-sales-page.js';
import { OrderPage } from './order-page.js';
import { OrdersPage } from './orders-page.js';
import { ProblemAlert } from './problem-alert.js';
import { Link, rememberOrdersSearch, useRoute } from './route.js';
import { keepSession, storedSession, type Session } from './session.js';
import { SignIn } from './sign-in.js';

export function App() {
  const [session, setSession] = useState<Session | null>(storedSession);
  // why the api signed the user out (its 401's detail), kept for the sign-in page
  const [signedOutBecause, setSignedOutBecause] = useState<string | null>(null);
  const route = useRoute();
  const signOut = (because: string | null = null) => {
    // the next to sign in may be someone else, a merchant whose list takes none of an admin's search
    rememberOrdersSearch('');
    keepSession(null);
    setSession(null);
    setSignedOutBecause(because);
  };
  const signedInWith = useRef(session?.token);
  signedInWith.current = session?.token;
  // a slow request sent with an earlier token may answer 401 after the operator signed in again: that sign-in stands
  const signOutOf = (token: string) => (because: string) => {
    if (signedInWith.current === token) signOut(because);
  };
  const api = useMemo(() => (session ? apiFor(session.token, signOutOf(session.token)) : null), [session]);

  if (!session || !api) {
    return (
      <main id="main">
        <SignIn
          signedOutBecause={signedOutBecause}
          onSignIn={(signedIn) => {
            setSignedOutBecause(null);
            keepSession(signedIn);
            setSession(signedIn);
          }}
        />
      </main>
    );
  }
  const current = (page: string) => (route.page === page ? { 'aria-current': 'page' as const } : {});
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Order centre</span>
        <nav aria-label="Console">
          <Link to="/" {...current('orders')}>
            Orders
          </Link>
          <Link to="/after-sales" {...current('after-sales')}>
            After-sales
          </Link>
          <Link to="/flash-sales" {...current('flash-sales')}>
            Flash sales
          </Link>
          {session.role === 'admin' && (
            <Link to="/dead-letters" {...current('dead-letters')}>
              Dead letters
            </Link>
          )}
        </nav>
        <span class="who">
          Signed in as {session.role} <strong>{session.sub}</strong>
        </span>
        <button type="button" onClick={() => signOut()}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {route.page === 'orders' && <OrdersPage key={route.arrival} api={api} session={session} />}
        {route.page === 'order' && <OrderPage key={route.orderId} api={api} orderId={route.orderId} role={session.role} />}
        {route.page === 'flash-sales' && <FlashSalesPage api={api} session={session} />}
        {route.page === 'after-sales' && <AfterSalesPage api={api} session={session} />}
        {route.page === 'dead-letters' && (session.role === 'admin' ? <DeadLettersPage key={route.arrival} api={api} /> : <ProblemAlert>Dead letters are for admins.</ProblemAlert>)}
      </main>
    </>
  );
}
