import { useEffect, useState } from 'preact/hooks';
import { ApiProblem, apiNow, formatTime, idempotencyKey, problemText, type Api, type QueueCounts, type Sku, type StockCounters } from './api.js';
import { amountUnit, formatCents } from './money.js';
import { keepDraft, readDraft } from './drafts.js';
import { useOneSendAtATime } from './one-send.js';
import { ProblemAlert } from './problem-alert.js';
import type { Session } from './session.js';

const POLL_MS = 1000;

/** A datetime-local input's value for an instant, in the browser's time zone. */
function localInput(at: Date): string {
  const local = new Date(at.getTime() - at.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

/** The browser's time zone, which datetime-local inputs are in (the console shows its times in UTC). */
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

interface Draft {
  skuId: string;
  title: string;
  merchantId: string;
  warehouseId: string;
  channel: 'self' | 'third_party';
  priceCents: string;
  salePriceCents: string;
  stock: string;
  perUserLimit: string;
  startsAt: string;
  endsAt: string;
}

export function FlashSalesPage({ api, session }: { api: Api; session: Session }) {
  const now = new Date();
  const [draft, setDraft] = useState<Draft>({
    skuId: '',
    title: '',
    merchantId: session.role === 'merchant' ? session.sub : '',
    warehouseId: 'wh-1',
    channel: 'self',
    priceCents: '',
    salePriceCents: '',
    stock: '',
    perUserLimit: '1',
    startsAt: localInput(now),
    endsAt: localInput(new Date(now.getTime() + 3_600_000)),
  });
  const { problem: createProblem, sendingNow: creating, send } = useOneSendAtATime();
  const [watchDraft, setWatchDraft] = useState('');
  const [watched, setWatched] = useState<string | null>(null);

  const field = (name: keyof Draft) => ({
    id: `sale-${name}`,
    name,
    value: draft[name],
    onInput: (event: { currentTarget: { value: string } }) => setDraft({ ...draft, [name]: event.currentTarget.value }),
  });

  async function create(event: Event) {
    event.preventDefault();
    const scope = `sku:${draft.skuId}`;
    await send(async () => {
      // a create sent again (after a failure, a reload, signing in again) goes under the key of the one sent
      // without an answer: had that one created the SKU, the api answers it, not 409 SKU_EXISTS
      const key = readDraft<{ key: string }>(scope, 'create-attempt')?.key ?? idempotencyKey();
      keepDraft(scope, 'create-attempt', { key });
      const sku = await api<Sku>('POST', '/v1/admin/skus', {
        skuId: draft.skuId,
        title: draft.title,
        priceCents: Number(draft.priceCents),
        merchantId: draft.merchantId,
        channel: draft.channel,
        warehouseId: draft.warehouseId,
        stock: Number(draft.stock),
        deduction: 'placement',
        flashSale: {
          priceCents: Number(draft.salePriceCents),
          startsAt: new Date(draft.startsAt).toISOString(),
          endsAt: new Date(draft.endsAt).toISOString(),
          perUserLimit: Number(draft.perUserLimit),
        },
      }, { 'idempotency-key': key }).catch((error: unknown) => {
        if (!(error instanceof ApiProblem && error.code === 'IDEMPOTENCY_CONFLICT')) throw error;
        // the unanswered one reached the api with other values, and created the SKU with those
        keepDraft(scope, 'create-attempt', null);
        setWatched(draft.skuId);
        throw new ApiProblem(error.status, error.code, `An earlier create of SKU ${draft.skuId}, sent without an answer, created it with the values of that send: see them below`);
      });
      keepDraft(scope, 'create-attempt', null);
      setWatched(sku.skuId);
    });
  }

  return (
    <section aria-labelledby="flash-title">
      <h1 id="flash-title">Flash sales</h1>
      <div class="columns">
        <form class="panel stacked" aria-labelledby="create-title" onSubmit={(event) => void create(event)}>
          <h2 id="create-title">Create a flash-sale SKU</h2>
          <p class="hint">Flash-sale stock is reserved at checkout and given back when an order is cancelled or unpaid.</p>
          <label for="sale-skuId">SKU id</label>
          <input required pattern="[A-Za-z0-9._\-]{1,64}" {...field('skuId')} />
          <label for="sale-title">Title</label>
          <input required maxLength={200} {...field('title')} />
          <label for="sale-merchantId">Merchant</label>
          <input required readOnly={session.role === 'merchant'} {...field('merchantId')} />
          <label for="sale-warehouseId">Warehouse</label>
          <input required {...field('warehouseId')} />
          <label for="sale-channel">Channel</label>
          <select {...field('channel')}>
            <option value="self">Self-operated</option>
            <option value="third_party">Third party</option>
          </select>
          <label for="sale-priceCents">List price ({amountUnit})</label>
          <input required type="number" min={0} step={1} inputMode="numeric" {...field('priceCents')} />
          <label for="sale-salePriceCents">Flash-sale price ({amountUnit})</label>
          <input required type="number" min={0} step={1} inputMode="numeric" {...field('salePriceCents')} />
          <label for="sale-stock">Units for sale</label>
          <input required type="number" min={0} step={1} inputMode="numeric" {...field('stock')} />
          <label for="sale-perUserLimit">Units per buyer (0: no limit)</label>
          <input required type="number" min={0} step={1} inputMode="numeric" {...field('perUserLimit')} />
          <label for="sale-startsAt">Starts (your time, {LOCAL_ZONE})</label>
          <input required type="datetime-local" {...field('startsAt')} />
          <label for="sale-endsAt">Ends (your time, {LOCAL_ZONE})</label>
          <input required type="datetime-local" {...field('endsAt')} />
          {createProblem && <ProblemAlert>{createProblem}</ProblemAlert>}
          <button type="submit" disabled={creating}>
            {creating ? 'Creating…' : 'Create flash sale'}
          </button>
        </form>
        <div>
          <form
            class="panel inline"
            aria-label="Watch a SKU"
            onSubmit={(event) => {
              event.preventDefault();
              setWatched(watchDraft.trim() || null);
            }}
          >
            <label for="watch-sku">SKU to watch</label>
            <input id="watch-sku" value={watchDraft} onInput={(event) => setWatchDraft(event.currentTarget.value)} />
            <button type="submit">Watch</button>
          </form>
          <OffSaleList api={api} onWatch={setWatched} />
          {watched && <SaleMonitor key={watched} api={api} skuId={watched} />}
        </div>
      </div>
    </section>
  );
}

/**
 * What `read` answers, read again `everyMs` after the last read ended: one read at a time, so no
 * late answer overwrites a newer one however slow the api is under a sale's load. Also the setter
 * of what was read (an action's answer shows at once), and why the last read failed (null: it did not).
 */
function useReadEvery<T>(everyMs: number, read: () => Promise<T>, inputs: unknown[]): [T | null, (change: (now: T | null) => T | null) => void, string | null] {
  const [value, setValue] = useState<T | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function again() {
      try {
        const answer = await read();
        if (stopped) return;
        setValue(answer);
        setProblem(null);
      } catch (error) {
        if (!stopped) setProblem(problemText(error));
      }
      if (!stopped) timer = setTimeout(() => void again(), everyMs);
    }
    void again();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, inputs);
  return [value, setValue, problem];
}

/** How often the list of SKUs off sale is read again. */
const OFF_SALE_POLL_MS = 10_000;

/**
 * The SKUs taken off sale (GET /v1/admin/skus?offSale=true), read every OFF_SALE_POLL_MS: one left
 * there by mistake sells nothing (skus_off_sale on the Flash sale dashboard counts them). The first
 * hundred; nothing shown while there are none.
 */
function OffSaleList({ api, onWatch }: { api: Api; onWatch: (skuId: string) => void }) {
  const [page, , problem] = useReadEvery(OFF_SALE_POLL_MS, () => api<{ items: Sku[]; nextCursor: string | null }>('GET', '/v1/admin/skus?offSale=true&limit=100'), [api]);
  const skus = page?.items ?? [];
  const more = (page?.nextCursor ?? null) !== null;

  if (skus.length === 0 && problem === null) return null;
  return (
    <section class="panel" aria-labelledby="off-sale-title">
      <h2 id="off-sale-title">Off sale</h2>
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      <ul>
        {skus.map((sku) => (
          <li>
            {sku.skuId}, since {formatTime(sku.offSaleSince)}{' '}
            <button type="button" aria-label={`Watch ${sku.skuId}`} onClick={() => onWatch(sku.skuId)}>
              Watch
            </button>
          </li>
        ))}
      </ul>
      {more && <p class="hint">The first 100 shown.</p>}
    </section>
  );
}

/**
 * The sale while it runs: stock counters and the queues behind the intake, read a second
 * after the last read ended. One read at a time, so no late answer overwrites a newer one
 * however slow the api is under the sale's load.
 */
function SaleMonitor({ api, skuId }: { api: Api; skuId: string }) {
  const [reading, setReading, problem] = useReadEvery(
    POLL_MS,
    async () => {
      const [sku, counts] = await Promise.all([api<Sku>('GET', `/v1/admin/skus/${encodeURIComponent(skuId)}`), api<{ queues: QueueCounts[] }>('GET', '/v1/admin/queues')]);
      return { sku, queues: counts.queues, readAt: new Date() };
    },
    [api, skuId],
  );
  const sku = reading?.sku ?? null;
  const queues = reading?.queues ?? [];
  const readAt = reading?.readAt ?? null;
  const setSku = (changed: Sku) => setReading((now) => now && { ...now, sku: changed });

  const total = sku ? sku.stock.available + sku.stock.reserved + sku.stock.sold : 0;
  return (
    <section class="panel" aria-labelledby="monitor-title">
      <h2 id="monitor-title">
        {skuId}
        {sku ? `: ${sku.title}` : ''}
      </h2>
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      {sku && (
        <>
          <p>
            {sku.flashSale
              ? `Flash price ${formatCents(sku.flashSale.priceCents)} (list ${formatCents(sku.priceCents)}), ${formatTime(sku.flashSale.startsAt)} to ${formatTime(sku.flashSale.endsAt)}, ${sku.flashSale.perUserLimit || 'no'} limit per buyer; not sold before it opens, at list price after it ends`
              : `No flash sale; list price ${formatCents(sku.priceCents)}`}
          </p>
          <dl class="counters">
            <div>
              <dt>Available</dt>
              <dd data-testid="stock-available">{sku.stock.available}</dd>
            </div>
            <div>
              <dt>Reserved</dt>
              <dd data-testid="stock-reserved">{sku.stock.reserved}</dd>
            </div>
            <div>
              <dt>Sold</dt>
              <dd data-testid="stock-sold">{sku.stock.sold}</dd>
            </div>
          </dl>
          <label for="sold-meter">Taken (reserved and sold) of {total}</label>
          <meter id="sold-meter" min={0} max={Math.max(total, 1)} value={sku.stock.reserved + sku.stock.sold} />
          {sku.bucketStock.length > 1 && <BucketStock buckets={sku.bucketStock} />}
          {sku.flashSale && Date.parse(sku.flashSale.startsAt) > apiNow() && <SaleChange key={JSON.stringify(sku.flashSale)} api={api} skuId={sku.skuId} sale={sku.flashSale} next={false} onChanged={setSku} />}
          {sku.flashSale && Date.parse(sku.flashSale.startsAt) <= apiNow() && apiNow() < Date.parse(sku.flashSale.endsAt) && (
            <SaleEnd key={JSON.stringify(sku.flashSale)} api={api} skuId={sku.skuId} sale={sku.flashSale} onEnded={setSku} />
          )}
          {sku.flashSale && Date.parse(sku.flashSale.endsAt) <= apiNow() && (
            <SaleChange key={JSON.stringify(sku.flashSale)} api={api} skuId={sku.skuId} sale={sku.flashSale} next onChanged={setSku} />
          )}
          <OnSaleSwitch api={api} sku={sku} onChanged={setSku} />
          <StockSet api={api} skuId={sku.skuId} onSet={setSku} />
        </>
      )}
      <table>
        <caption>Queues behind the sale</caption>
        <ColumnHeads first="Queue" counts={['Waiting', 'Active', 'Delayed', 'Failed', 'Oldest waiting', 'Delayed, past due']} />
        <tbody>
          {queues.map((queue) => (
            <tr>
              <th scope="row">{queue.name}</th>
              <td class="number" data-testid={`queue-${queue.name}-waiting`}>
                {queue.waiting + queue.prioritized}
              </td>
              <td class="number">{queue.active}</td>
              <td class="number">{queue.delayed}</td>
              <td class="number">{queue.failed}</td>
              <td class="number">{formatWait(queue.oldestWaitingSeconds)}</td>
              {/* only a worker serving the queue moves due timers on: past due, none serves it */}
              <td class="number">{formatWait(queue.overdueDelayedSeconds)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="hint">Read a second after each answer{readAt ? `; last at ${readAt.toLocaleTimeString('en-GB', { timeZone: 'UTC' })} UTC` : ''}.</p>
    </section>
  );
}

/** How long a queue's oldest job has waited (or its first delayed job is past due), as an operator reads it: none, seconds, then minutes. */
function formatWait(seconds: number): string {
  if (seconds === 0) return '–';
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min`;
}

/** A minute's leeway for the operator to send the next sale before its suggested start. */
const NEXT_SALE_LEEWAY_MS = 60_000;
const DAY_MS = 86_400_000;

/** The next sale suggested whole days (24 h each) after the last one's start, the first such time still ahead: a SKU's daily sale. */
function nextDailyStart(lastStartsAt: string): Date {
  const last = Date.parse(lastStartsAt);
  const days = Math.max(1, Math.ceil((apiNow() + NEXT_SALE_LEEWAY_MS - last) / DAY_MS));
  return new Date(last + days * DAY_MS);
}

/** What withdrawing a sale does at once, asked before it is sent. */
const WITHDRAW_CONSEQUENCE = 'Withdraw the flash sale? The SKU then sells at once at its list price, without a per-buyer limit.';

/**
 * Postpones, changes or withdraws a sale that has not opened, or (`next`) gives the SKU its next
 * sale once the last has ended, suggested whole days after the last one's start. The api refuses
 * a sale that opened until it is over for good (its end, or its former end for one ended early
 * that an earlier release set; its orders in MySQL; or within seconds of opening, by the clock
 * checkouts are accepted by), whatever this browser's clock says, and its problem says until when.
 */
function SaleChange({ api, skuId, sale, next, onChanged }: { api: Api; skuId: string; sale: NonNullable<Sku['flashSale']>; next: boolean; onChanged: (sku: Sku) => void }) {
  const lastsMs = Date.parse(sale.endsAt) - Date.parse(sale.startsAt);
  const startsAt = next ? nextDailyStart(sale.startsAt) : new Date(sale.startsAt);
  const [draft, setDraft] = useState({
    priceCents: String(sale.priceCents),
    perUserLimit: String(sale.perUserLimit),
    startsAt: localInput(startsAt),
    endsAt: localInput(new Date(startsAt.getTime() + lastsMs)),
  });
  const { problem, sendingNow, send: sendOnce } = useOneSendAtATime();
  const path = `/v1/admin/skus/${encodeURIComponent(skuId)}/flash-sale`;

  async function send(method: 'PUT' | 'DELETE') {
    if (sendingNow || (method === 'DELETE' && !window.confirm(WITHDRAW_CONSEQUENCE))) return;
    const body = method === 'PUT'
      ? { priceCents: Number(draft.priceCents), perUserLimit: Number(draft.perUserLimit), startsAt: new Date(draft.startsAt).toISOString(), endsAt: new Date(draft.endsAt).toISOString() }
      : undefined;
    await sendOnce(async () => onChanged(await api<Sku>(method, path, body)));
  }

  const field = (name: keyof typeof draft) => ({
    id: `change-${name}`,
    value: draft[name],
    onInput: (event: { currentTarget: { value: string } }) => setDraft({ ...draft, [name]: event.currentTarget.value }),
  });

  return (
    <form
      class="stacked"
      aria-labelledby="change-title"
      onSubmit={(event) => {
        event.preventDefault();
        void send('PUT');
      }}
    >
      <h3 id="change-title">{next ? 'Give the SKU its next sale' : 'Change the sale before it opens'}</h3>
      <p class="hint">
        {next
          ? 'The last sale is over; the next one holds the units from now until it opens.'
          : 'Postpone it, change its price or limit, or withdraw it, until a few seconds before it opens. Once it has opened, end it early, or take the SKU off sale to stop selling it at once.'}
      </p>
      <label for="change-startsAt">Sale starts (your time, {LOCAL_ZONE})</label>
      <input required type="datetime-local" {...field('startsAt')} />
      <label for="change-endsAt">Sale ends (your time, {LOCAL_ZONE})</label>
      <input required type="datetime-local" {...field('endsAt')} />
      <label for="change-priceCents">Sale price ({amountUnit})</label>
      <input required type="number" min={0} step={1} inputMode="numeric" {...field('priceCents')} />
      <label for="change-perUserLimit">Sale units per buyer (0: no limit)</label>
      <input required type="number" min={0} step={1} inputMode="numeric" {...field('perUserLimit')} />
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      <div class="inline">
        <button type="submit" disabled={sendingNow}>
          {next ? 'Set the next sale' : 'Change the sale'}
        </button>
        <button type="button" disabled={sendingNow} onClick={() => void send('DELETE')}>
          Withdraw the sale
        </button>
      </div>
    </form>
  );
}

/** What ending a sale early does, asked before it is sent. */
const endConsequence = (endsAt: Date) =>
  `End the flash sale at ${formatTime(endsAt.toISOString())}? Orders accepted before then keep the sale's price; from then the SKU sells at its list price, without a per-buyer limit.`;

/** A table's head: what its rows are, then the columns of figures, aligned as figures. */
function ColumnHeads({ first, counts }: { first: string; counts: string[] }) {
  return (
    <thead>
      <tr>
        <th scope="col">{first}</th>
        {counts.map((count) => (
          <th scope="col" class="number">
            {count}
          </th>
        ))}
      </tr>
    </thead>
  );
}

/**
 * The stock of each bucket of a SKU split into buckets: a bucket sold out while others have units
 * turns its buyers away until the rebalancer moves units to it; one Redis lost reads 0 until the
 * stock repair recreates it.
 */
function BucketStock({ buckets }: { buckets: StockCounters[] }) {
  return (
    <table>
      <caption>Stock per bucket</caption>
      <ColumnHeads first="Bucket" counts={['Available', 'Reserved', 'Sold']} />
      <tbody>
        {buckets.map((bucket, index) => (
          <tr>
            <th scope="row">{index}</th>
            <td class="number" data-testid={`bucket-${index}-available`}>
              {bucket.available}
            </td>
            <td class="number">{bucket.reserved}</td>
            <td class="number">{bucket.sold}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Takes the SKU off sale, or puts it back on sale (PUT …/on-sale): what the runbook's wrong price
 * asks for first. Off sale, every checkout of it is refused at once, whatever its stock and sale;
 * the orders already taken go on, and what they give back waits for its return to sale. Sent again
 * after a failure, the same change finishes it.
 */
function OnSaleSwitch({ api, sku, onChanged }: { api: Api; sku: Sku; onChanged: (sku: Sku) => void }) {
  const { problem, sendingNow, send: sendOnce } = useOneSendAtATime();

  async function send() {
    const consequence = sku.onSale
      ? `Take ${sku.skuId} off sale? Every checkout of it is refused from now on; orders already taken go on, and units they give back stay off sale until you put it back on sale.`
      : `Put ${sku.skuId} back on sale? Its ${sku.stock.available} available units sell again, by its price and sale.`;
    if (sendingNow || !window.confirm(consequence)) return;
    await sendOnce(async () => onChanged(await api<Sku>('PUT', `/v1/admin/skus/${encodeURIComponent(sku.skuId)}/on-sale`, { onSale: !sku.onSale })));
  }

  return (
    <form
      class="stacked"
      aria-labelledby="on-sale-title"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <h3 id="on-sale-title">On sale</h3>
      <p data-testid="on-sale-status">{sku.onSale ? 'On sale: checkouts are taken.' : `Off sale since ${formatTime(sku.offSaleSince ?? '')}: every checkout is refused.`}</p>
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      <div class="inline">
        <button type="submit" disabled={sendingNow}>
          {sku.onSale ? 'Take off sale' : 'Put back on sale'}
        </button>
      </div>
    </form>
  );
}

/** How long after a stock set sent without an answer the same figure is sent again under its key. */
const STOCK_SET_RETRY_WITHIN_MS = 15 * 60_000;

/**
 * Sets the SKU's sellable stock (PUT …/stock): 0 stops selling what is on sale then, whatever the
 * sale (units orders give back afterwards go on sale again); the units already reserved or sold stay theirs. The
 * same figure sent again after no answer (a failure, a reload) within STOCK_SET_RETRY_WITHIN_MS goes
 * under the key of the one sent: had that one set the stock, the api answers it and sets nothing
 * again, so units sold in between stay sold. Another figure, or the same one later, is a set of its own.
 */
function StockSet({ api, skuId, onSet }: { api: Api; skuId: string; onSet: (sku: Sku) => void }) {
  const [stock, setStock] = useState('0');
  const { problem, sendingNow, send: sendOnce } = useOneSendAtATime();

  async function send() {
    const units = Number(stock);
    if (sendingNow || !window.confirm(`Set the sellable stock of ${skuId} to ${units}? ${units === 0 ? 'Every checkout of it is refused from now on' : `${units} units are for sale from now on`}; orders already taken keep theirs.`)) return;
    const scope = `sku:${skuId}`;
    await sendOnce(async () => {
      const unanswered = readDraft<{ key: string; units: number; at: number }>(scope, 'stock-set-attempt');
      // a retry comes within minutes; the same figure typed later is a set of its own, made again
      const retry = unanswered?.units === units && Date.now() - unanswered.at < STOCK_SET_RETRY_WITHIN_MS;
      const key = retry ? unanswered.key : idempotencyKey();
      keepDraft(scope, 'stock-set-attempt', { key, units, at: retry ? unanswered.at : Date.now() });
      onSet(await api<Sku>('PUT', `/v1/admin/skus/${encodeURIComponent(skuId)}/stock`, { stock: units }, { 'idempotency-key': key }));
      keepDraft(scope, 'stock-set-attempt', null);
    });
  }

  return (
    <form
      class="stacked"
      aria-labelledby="stock-set-title"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <h3 id="stock-set-title">Set the stock</h3>
      <p class="hint">0 stops selling what is on sale now; units orders give back afterwards go on sale again (to stop selling for good, take it off sale). Orders already taken keep their units.</p>
      <label for="stock-set-units">Sellable stock</label>
      <input required type="number" min={0} max={1_000_000_000} step={1} id="stock-set-units" value={stock} onInput={(event) => setStock(event.currentTarget.value)} />
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      <div class="inline">
        <button type="submit" disabled={sendingNow}>
          Set the stock
        </button>
      </div>
    </form>
  );
}

/**
 * Ends a running sale early, at a time in this browser's zone: the api ends it at that instant in
 * every bucket and the catalog, when it is more than a few seconds ahead by the clock checkouts are
 * accepted by, and answers why not otherwise. Sent again after a failure, the same end finishes it.
 */
function SaleEnd({ api, skuId, sale, onEnded }: { api: Api; skuId: string; sale: NonNullable<Sku['flashSale']>; onEnded: (sku: Sku) => void }) {
  // a minute or two ahead (the input shows whole minutes), never after the sale's own end
  const [endsAt, setEndsAt] = useState(() => localInput(new Date(Math.min(apiNow() + 120_000, Date.parse(sale.endsAt)))));
  const { problem, sendingNow, send: sendOnce } = useOneSendAtATime();

  async function send() {
    const at = new Date(endsAt);
    if (sendingNow || !window.confirm(endConsequence(at))) return;
    await sendOnce(async () => onEnded(await api<Sku>('PUT', `/v1/admin/skus/${encodeURIComponent(skuId)}/flash-sale/end`, { endsAt: at.toISOString() })));
  }

  return (
    <form
      class="stacked"
      aria-labelledby="end-title"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <h3 id="end-title">End the sale early</h3>
      <p class="hint">It ends at the time given, at least a few seconds ahead; what is left then sells at the list price, and the SKU may get its next sale. To stop selling, take the SKU off sale.</p>
      <label for="end-endsAt">Sale ends (your time, {LOCAL_ZONE})</label>
      <input required type="datetime-local" step={1} id="end-endsAt" value={endsAt} onInput={(event) => setEndsAt(event.currentTarget.value)} />
      {problem && <ProblemAlert>{problem}</ProblemAlert>}
      <div class="inline">
        <button type="submit" disabled={sendingNow}>
          End the sale
        </button>
      </div>
    </form>
  );
}
