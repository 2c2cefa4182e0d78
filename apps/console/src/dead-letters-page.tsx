import { useEffect, useState } from 'preact/hooks';
import { formatTime, problemText, query, type Api, type DeadLetter, type DeadLetterList } from './api.js';
import { useOneSendAtATime } from './one-send.js';
import { ProblemAlert } from './problem-alert.js';
import { Link } from './route.js';

/** The letters one page shows: the oldest first, as `npm run dlq -- list` does. */
const LISTED = 100;

/** Where the last page of `total` letters starts. */
const lastPageAt = (total: number) => Math.max(0, Math.floor((total - 1) / LISTED) * LISTED);

const REPLAY_CONSEQUENCE = (letter: DeadLetter) =>
  `Replay dead letter ${letter.letterId}? Its job goes back to ${letter.queue} with fresh attempts: fix what made it fail first, or it fails again.`;
const REPLAY_ALL_CONSEQUENCE = (count: number) =>
  `Replay the ${count === 1 ? 'dead letter' : `${count} oldest dead letters`} shown? Each job goes back to its queue with fresh attempts: fix what made them fail first, or they fail again.`;
const DROP_CONSEQUENCE = (letter: DeadLetter) =>
  `Drop dead letter ${letter.letterId}? Its job is not run again: only for work done another way or no longer wanted (a new address told to the warehouse by hand). A refund or hand-over still due comes back by itself a sweep later and runs: never pay a refund back by hand and drop its letter. This cannot be undone.`;

/**
 * The dead letters as read (all, or those carrying `orderId`), a page of them from the `offset`
 * oldest on, and an admin's steps on them: each asks first, one at a time, says what it did, and
 * reads the letters again after, and tells `stepDone` (the order page reads its order again: a
 * job replayed moves it on); so does a change of `readAgain` (the order page's refresh).
 */
function useDeadLetters(api: Api, orderId?: string, readAgain = 0, stepDone?: () => void) {
  const [letters, setLetters] = useState<DeadLetterList | null>(null);
  const [offset, setOffset] = useState(0);
  const [readProblem, setReadProblem] = useState<string | null>(null);
  const [reads, setReads] = useState(0);
  const [done, setDone] = useState<string | null>(null);
  const { problem, sendingNow, send } = useOneSendAtATime();

  useEffect(() => {
    let current = true;
    api<DeadLetterList>('GET', `/v1/admin/dead-letters${query({ limit: LISTED, offset: offset === 0 ? undefined : offset, orderId })}`)
      .then((read) => {
        if (!current) return;
        // the letters of this page and after it were replayed or dropped meanwhile: the last page there is is read instead
        if (read.items.length === 0 && offset > 0) {
          setOffset(lastPageAt(read.total));
          return;
        }
        setLetters(read);
        setReadProblem(null);
      })
      .catch((error: unknown) => current && setReadProblem(problemText(error)));
    return () => {
      current = false;
    };
  }, [api, orderId, offset, reads, readAgain]);

  /** `request` sent once confirmed; its answer said; the letters read again, whatever it answered (gone meanwhile: another admin's, npm run dlq's). */
  const stepOnce = (consequence: string, request: () => Promise<string>) => {
    if (!window.confirm(consequence)) return;
    void send(async () => {
      setDone(null);
      try {
        setDone(await request());
      } finally {
        setReads((n) => n + 1);
        stepDone?.();
      }
    });
  };
  const letterPath = (letter: DeadLetter) => `/v1/admin/dead-letters/${encodeURIComponent(letter.letterId)}`;
  return {
    letters,
    /** how many older letters the page passes over */
    offset,
    previousPage: () => setOffset((at) => Math.max(0, at - LISTED)),
    nextPage: () => setOffset((at) => at + LISTED),
    readProblem,
    problem,
    sendingNow,
    done,
    reload: () => setReads((n) => n + 1),
    replay: (letter: DeadLetter) => stepOnce(REPLAY_CONSEQUENCE(letter), async () => `Replayed ${(await api<{ outcome: string }>('POST', `${letterPath(letter)}/replay`)).outcome}`),
    drop: (letter: DeadLetter) => stepOnce(DROP_CONSEQUENCE(letter), async () => `Dropped ${(await api<{ outcome: string }>('DELETE', letterPath(letter))).outcome}`),
    replayOldest: (count: number) =>
      stepOnce(REPLAY_ALL_CONSEQUENCE(count), async () => {
        const answer = await api<{ replayed: string[]; failed?: Array<{ letterId: string; reason: string }>; left: number }>('POST', '/v1/admin/dead-letters/replay', { limit: count });
        const failed = (answer.failed ?? []).map(({ letterId, reason }) => `; not replayed ${letterId}: ${reason}`).join('');
        return `Replayed ${answer.replayed.length} dead letter${answer.replayed.length === 1 ? '' : 's'}${failed}; ${answer.left} left`;
      }),
  };
}

/**
 * The dead letters (an admin's): the jobs that failed every attempt, each with the orders it
 * carries and why, to replay once its cause is fixed or drop once its work was done by hand,
 * as `npm run dlq` does. A letter of accepted orders is never dropped: its buyers were told.
 */
export function DeadLettersPage({ api }: { api: Api }) {
  const dead = useDeadLetters(api);
  const { letters } = dead;
  return (
    <section aria-labelledby="dead-letters-title">
      <h1 id="dead-letters-title">Dead letters</h1>
      <p class="hint">
        Jobs that failed every attempt wait here, oldest first, until replayed or dropped (as <code>npm run dlq</code> does). Replay once what made one fail is fixed; drop only one whose work was done another way (a refund still due comes back by itself, and is paid).
        A letter of accepted orders is replayed, never dropped.
      </p>
      <button type="button" onClick={dead.reload}>
        Refresh
      </button>
      <StepAnswers dead={dead} />
      {dead.readProblem && <ProblemAlert>The dead letters could not be read: {dead.readProblem}</ProblemAlert>}
      {letters && letters.items.length === 0 && <p class="empty">No dead letters.</p>}
      {letters && letters.items.length > 0 && (
        <>
          {/* the api replays the oldest letters: offered on the page that shows them */}
          {dead.offset === 0 && (
            <button type="button" disabled={dead.sendingNow} onClick={() => dead.replayOldest(letters.items.length)}>
              Replay {letters.items.length === 1 ? 'it' : `all ${letters.items.length} shown`}
            </button>
          )}
          <DeadLetterTable
            dead={dead}
            caption={
              letters.total > letters.items.length
                ? `Dead letters ${dead.offset + 1} to ${dead.offset + letters.items.length} of ${letters.total}, oldest first`
                : `${letters.total} dead letter${letters.total === 1 ? '' : 's'}`
            }
          />
          {letters.total > letters.items.length && (
            <nav class="pager" aria-label="Pages of dead letters">
              <button type="button" disabled={dead.offset === 0} onClick={dead.previousPage}>
                Previous page
              </button>
              <button type="button" disabled={dead.offset + letters.items.length >= letters.total} onClick={dead.nextPage}>
                Next page
              </button>
            </nav>
          )}
        </>
      )}
    </section>
  );
}

/**
 * An order's jobs that failed for good (an admin's view of it): nothing moves what they were to do
 * (its refund, its warehouse's update) until one is replayed. Nothing is shown while none did; a
 * read that failed says so, as it may hide one.
 */
export function OrderDeadLetters({ api, orderId, readAgain, stepDone }: { api: Api; orderId: string; readAgain: number; stepDone: () => void }) {
  const dead = useDeadLetters(api, orderId, readAgain, stepDone);
  if (dead.readProblem) {
    return (
      <>
        <StepAnswers dead={dead} />
        <div class="problem" role="alert">
          <p>Whether a job of this order failed for good could not be read: {dead.readProblem}</p>
          <button type="button" onClick={dead.reload}>
            Read again
          </button>
        </div>
      </>
    );
  }
  if (!dead.letters?.total && !dead.done) return null;
  return (
    <section aria-labelledby="order-dead-letters">
      <h2 id="order-dead-letters">Failed for good</h2>
      {dead.letters && dead.letters.total > 0 && (
        <ProblemAlert>
          {dead.letters.total === 1 ? 'A job of this order' : `${dead.letters.total} jobs of this order`} failed every attempt: nothing does {dead.letters.total === 1 ? 'its' : 'their'} work until replayed once the cause is fixed.
        </ProblemAlert>
      )}
      <StepAnswers dead={dead} />
      {dead.letters && dead.letters.items.length > 0 && <DeadLetterTable dead={dead} caption={`Dead letters of order ${orderId}`} />}
    </section>
  );
}

type DeadLetters = ReturnType<typeof useDeadLetters>;

function StepAnswers({ dead }: { dead: DeadLetters }) {
  return (
    <>
      {dead.done && (
        <p class="done" role="status">
          {dead.done}
        </p>
      )}
      {dead.problem && <ProblemAlert>Not done: {dead.problem}</ProblemAlert>}
    </>
  );
}

function DeadLetterTable({ dead, caption }: { dead: DeadLetters; caption: string }) {
  return (
    <div class="table-wrap">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Letter</th>
            <th scope="col">Failed in</th>
            <th scope="col">Orders</th>
            <th scope="col" class="number">
              Attempts
            </th>
            <th scope="col">Failed</th>
            <th scope="col">Why</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {dead.letters?.items.map((letter) => (
            <tr key={letter.letterId}>
              <th scope="row">{letter.letterId}</th>
              <td>
                {letter.queue}/{letter.name}
              </td>
              <td>
                {letter.orders.length <= 3
                  ? letter.orders.map((orderId, at) => (
                      <>
                        {at > 0 && ', '}
                        <Link to={`/orders/${orderId}`}>{orderId}</Link>
                      </>
                    ))
                  : `${letter.orders.length} orders`}
              </td>
              <td class="number">{letter.attemptsMade}</td>
              <td>
                <time dateTime={letter.failedAt}>{formatTime(letter.failedAt)}</time>
              </td>
              <td>{letter.failedReason}</td>
              <td>
                <button type="button" disabled={dead.sendingNow} onClick={() => dead.replay(letter)} aria-label={`Replay ${letter.letterId}`}>
                  Replay
                </button>
                {letter.queue !== 'orders' && (
                  <button type="button" disabled={dead.sendingNow} onClick={() => dead.drop(letter)} aria-label={`Drop ${letter.letterId}`}>
                    Drop
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
