import { useEffect, useState } from 'preact/hooks';
import { formatTime, problemText, type Api, type DeadLetter, type DeadLetterList } from './api.js';
import { useOneSendAtATime } from './one-send.js';
import { ProblemAlert } from './problem-alert.js';
import { Link } from './route.js';

/** The letters one read shows: the oldest first, as `npm run dlq -- list` does. */
const LISTED = 100;

const REPLAY_CONSEQUENCE = (letter: DeadLetter) =>
  `Replay dead letter ${letter.letterId}? Its job goes back to ${letter.queue} with fresh attempts: fix what made it fail first, or it fails again.`;
const REPLAY_ALL_CONSEQUENCE = (count: number) =>
  `Replay the ${count === 1 ? 'dead letter' : `${count} oldest dead letters`} shown? Each job goes back to its queue with fresh attempts: fix what made them fail first, or they fail again.`;
const DROP_CONSEQUENCE = (letter: DeadLetter) =>
  `Drop dead letter ${letter.letterId}? Its job is not run again: only for work done by hand (a refund paid back from the payment provider's dashboard, a parcel settled with the warehouse). This cannot be undone.`;

/**
 * The dead letters (an admin's): the jobs that failed every attempt, each with the orders it
 * carries and why, to replay once its cause is fixed or drop once its work was done by hand,
 * as `npm run dlq` does. A letter of accepted orders is never dropped: its buyers were told.
 */
export function DeadLettersPage({ api }: { api: Api }) {
  const [letters, setLetters] = useState<DeadLetterList | null>(null);
  const [readProblem, setReadProblem] = useState<string | null>(null);
  const [reads, setReads] = useState(0);
  const [done, setDone] = useState<string | null>(null);
  const { problem, sendingNow, send } = useOneSendAtATime();

  useEffect(() => {
    let current = true;
    api<DeadLetterList>('GET', `/v1/admin/dead-letters?limit=${LISTED}`)
      .then((read) => {
        if (!current) return;
        setLetters(read);
        setReadProblem(null);
      })
      .catch((error: unknown) => current && setReadProblem(problemText(error)));
    return () => {
      current = false;
    };
  }, [api, reads]);

  const replayOldest = (count: number) => {
    if (!window.confirm(REPLAY_ALL_CONSEQUENCE(count))) return;
    void send(async () => {
      setDone(null);
      try {
        const answer = await api<{ replayed: string[]; left: number }>('POST', '/v1/admin/dead-letters/replay', { limit: count });
        setDone(`Replayed ${answer.replayed.length} dead letter${answer.replayed.length === 1 ? '' : 's'}; ${answer.left} left`);
      } finally {
        setReads((n) => n + 1);
      }
    });
  };

  const step = (letter: DeadLetter, how: 'replay' | 'drop') => {
    if (!window.confirm(how === 'replay' ? REPLAY_CONSEQUENCE(letter) : DROP_CONSEQUENCE(letter))) return;
    void send(async () => {
      setDone(null);
      try {
        const answer =
          how === 'replay'
            ? await api<{ outcome: string }>('POST', `/v1/admin/dead-letters/${encodeURIComponent(letter.letterId)}/replay`)
            : await api<{ outcome: string }>('DELETE', `/v1/admin/dead-letters/${encodeURIComponent(letter.letterId)}`);
        setDone(`${how === 'replay' ? 'Replayed' : 'Dropped'} ${answer.outcome}`);
      } finally {
        // replayed, dropped, or gone meanwhile (another admin's, npm run dlq's): the list as it is now
        setReads((n) => n + 1);
      }
    });
  };

  return (
    <section aria-labelledby="dead-letters-title">
      <h1 id="dead-letters-title">Dead letters</h1>
      <p class="hint">
        Jobs that failed every attempt wait here, oldest first, until replayed or dropped (as <code>npm run dlq</code> does). Replay once what made one fail is fixed; drop only one whose work was done by hand.
        A letter of accepted orders is replayed, never dropped.
      </p>
      <button type="button" onClick={() => setReads((n) => n + 1)}>
        Refresh
      </button>
      {done && (
        <p class="done" role="status">
          {done}
        </p>
      )}
      {problem && <ProblemAlert>Not done: {problem}</ProblemAlert>}
      {readProblem && <ProblemAlert>The dead letters could not be read: {readProblem}</ProblemAlert>}
      {letters && letters.items.length === 0 && <p class="empty">No dead letters.</p>}
      {letters && letters.items.length > 0 && (
        <button type="button" disabled={sendingNow} onClick={() => replayOldest(letters.items.length)}>
          Replay {letters.items.length === 1 ? 'it' : `all ${letters.items.length} shown`}
        </button>
      )}
      {letters && letters.items.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>
              {letters.total > letters.items.length ? `The oldest ${letters.items.length} of ${letters.total} dead letters` : `${letters.total} dead letter${letters.total === 1 ? '' : 's'}`}
            </caption>
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
              {letters.items.map((letter) => (
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
                    <button type="button" disabled={sendingNow} onClick={() => step(letter, 'replay')} aria-label={`Replay ${letter.letterId}`}>
                      Replay
                    </button>
                    {letter.queue !== 'orders' && (
                      <button type="button" disabled={sendingNow} onClick={() => step(letter, 'drop')} aria-label={`Drop ${letter.letterId}`}>
                        Drop
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
