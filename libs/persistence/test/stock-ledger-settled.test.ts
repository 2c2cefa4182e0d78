import { StockLedgerRepository, type LedgerStock } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SKUS = ['KETTLE', 'LAMP', 'STOOL'];

type LedgerKind = 'adjust' | 'reserve' | 'release' | 'commit' | 'restock';
interface LedgerRow {
  sku_id: string;
  kind: LedgerKind;
  ref: string;
  qty: number;
}

/** The stock counters by their definition, over every row ever written: what the check must read, however much of it is folded. */
function countersOf(rows: readonly LedgerRow[]): LedgerStock[] {
  const movements = new Map<string, LedgerRow[]>();
  for (const row of rows) movements.set(`${row.sku_id} ${row.ref}`, [...(movements.get(`${row.sku_id} ${row.ref}`) ?? []), row]);
  const stock = new Map(SKUS.map((skuId) => [skuId, { skuId, available: 0, reserved: 0, sold: 0 }]));
  for (const movement of movements.values()) {
    const counters = stock.get(movement[0]!.sku_id)!;
    const has = (kind: LedgerKind) => movement.some((row) => row.kind === kind);
    const units = (...kinds: LedgerKind[]) => movement.filter((row) => kinds.includes(row.kind)).reduce((sum, row) => sum + row.qty, 0);
    counters.available += units('adjust', 'reserve', 'release', 'commit', 'restock');
    if (!has('release') && !has('commit')) counters.reserved -= units('reserve');
    counters.sold -= units('commit', 'restock') + (has('commit') ? units('reserve') : 0);
  }
  return [...stock.values()];
}

type Step =
  | { op: 'adjust'; sku: number; qty: number }
  | { op: 'reserve'; skus: number[]; qty: number }
  | { op: 'close'; pick: number; kind: 'commit' | 'release' }
  | { op: 'commitAtPayment'; sku: number; qty: number }
  | { op: 'restock'; pick: number }
  | { op: 'age'; pick: number }
  | { op: 'fold' };

const sku = fc.integer({ min: 0, max: SKUS.length - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('adjust' as const), sku, qty: fc.integer({ min: -5, max: 30 }) }),
  { arbitrary: fc.record({ op: fc.constant('reserve' as const), skus: fc.uniqueArray(sku, { minLength: 1, maxLength: SKUS.length }), qty: fc.integer({ min: 1, max: 4 }) }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('close' as const), pick: fc.nat(), kind: fc.constantFrom('commit' as const, 'release' as const) }), weight: 3 },
  fc.record({ op: fc.constant('commitAtPayment' as const), sku, qty: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ op: fc.constant('restock' as const), pick: fc.nat() }),
  { arbitrary: fc.record({ op: fc.constant('age' as const), pick: fc.nat() }), weight: 2 },
  { arbitrary: fc.constant({ op: 'fold' as const }), weight: 2 },
);

describe('the stock check reads the settled ledger as sums, and the rest row by row', () => {
  let env: TestEnv;
  let ledger: StockLedgerRepository;

  beforeAll(async () => {
    env = await createTestEnv('ledger_settled');
    ledger = new StockLedgerRepository(env.db);
    await env.db
      .insertInto('skus')
      .values(SKUS.map((skuId) => ({ sku_id: skuId, title: skuId, price_cents: 1_000, merchant_id: 'm1', channel: 'self', warehouse_id: 'w1', deduction: 'placement', stock: 0 })))
      .execute();
  });
  afterAll(async () => env?.cleanup());

  const startOver = async () => {
    for (const table of ['stock_ledger', 'stock_ledger_settled', 'stock_ledger_unsettled'] as const) await env.db.deleteFrom(table).execute();
    await env.db.updateTable('stock_ledger_settled_through').set({ ledger_id: 0 }).execute();
  };
  const write = async (rows: LedgerRow[], written: LedgerRow[]) => {
    await env.db
      .insertInto('stock_ledger')
      .values(rows.map((row) => ({ ...row, order_id: row.kind === 'adjust' ? null : row.ref.split(':')[0]!, reason: 'test' })))
      .execute();
    written.push(...rows);
  };
  const stockRead = async () => (await ledger.snapshot([])).stock;
  /** Time passes: the rows up to this id (every row without one) were written two hours ago. */
  const age = async (upTo = Number.MAX_SAFE_INTEGER) => {
    await sql`UPDATE stock_ledger SET created_at = NOW(3) - INTERVAL 2 HOUR WHERE id <= ${upTo}`.execute(env.db);
  };

  it('counts every movement once, open or closed, old or new, however often and wherever the sums were folded', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 12 }), async (steps, foldRowsAtMost) => {
        await startOver();
        // a few rows a fold, as a ledger of millions is caught up in runs of FOLD_ROWS_AT_MOST
        const folding = new StockLedgerRepository(env.db, { settledAfterMs: 60 * 60_000, foldRowsAtMost });
        const written: LedgerRow[] = [];
        const open: Array<{ ref: string; lines: Array<{ sku_id: string; qty: number }> }> = [];
        const committed: Array<{ ref: string; lines: Array<{ sku_id: string; qty: number }> }> = [];
        let refs = 0;
        for (const next of steps) {
          const ref = `o${++refs}`;
          if (next.op === 'adjust') await write([{ sku_id: SKUS[next.sku]!, kind: 'adjust', ref, qty: next.qty }], written);
          else if (next.op === 'reserve') {
            const lines = next.skus.map((i) => ({ sku_id: SKUS[i]!, qty: next.qty }));
            await write(lines.map((line) => ({ sku_id: line.sku_id, kind: 'reserve' as const, ref, qty: -line.qty })), written);
            open.push({ ref, lines });
          } else if (next.op === 'close' && open.length > 0) {
            const [order] = open.splice(next.pick % open.length, 1);
            // a placement line's commit carries 0 (its units are the reservation's); a release gives them back
            await write(order!.lines.map((line) => ({ sku_id: line.sku_id, kind: next.kind, ref: order!.ref, qty: next.kind === 'commit' ? 0 : line.qty })), written);
            if (next.kind === 'commit') committed.push(order!);
          } else if (next.op === 'commitAtPayment') {
            await write([{ sku_id: SKUS[next.sku]!, kind: 'commit', ref, qty: -next.qty }], written);
            committed.push({ ref, lines: [{ sku_id: SKUS[next.sku]!, qty: next.qty }] });
          } else if (next.op === 'restock' && committed.length > 0) {
            const order = committed[next.pick % committed.length]!;
            await write(order.lines.map((line) => ({ sku_id: line.sku_id, kind: 'restock' as const, ref: `${order.ref}:refund${refs}`, qty: line.qty })), written);
          } else if (next.op === 'age') {
            const ids = await env.db.selectFrom('stock_ledger').select('id').orderBy('id').execute();
            if (ids.length > 0) await age(ids[next.pick % ids.length]!.id);
          } else if (next.op === 'fold') {
            await folding.foldSettled();
            expect(await stockRead()).toEqual(countersOf(written));
          }
        }
        expect(await stockRead()).toEqual(countersOf(written));
        // once every row is old, folds leave only the open reservations' rows to read one by one
        await age();
        const newest = Number((await env.db.selectFrom('stock_ledger').select((eb) => eb.fn.max('id').as('id')).executeTakeFirstOrThrow()).id ?? 0);
        while ((await folding.foldSettled()) !== newest) expect(await stockRead()).toEqual(countersOf(written));
        expect(await stockRead()).toEqual(countersOf(written));
        const unsettled = await env.db.selectFrom('stock_ledger_unsettled as u').innerJoin('stock_ledger as l', 'l.id', 'u.ledger_id').select('l.ref').execute();
        expect(new Set(unsettled.map((row) => row.ref))).toEqual(new Set(open.map((order) => order.ref)));
      }),
      { numRuns: 40 },
    );
  });

  it('lets one fold run at a time, the other leaving it, and counts nothing twice', async () => {
    await startOver();
    const written: LedgerRow[] = [];
    await write(
      Array.from({ length: 200 }, (_, i) => ({ sku_id: SKUS[i % SKUS.length]!, kind: 'adjust' as const, ref: `set${i}`, qty: 5 })),
      written,
    );
    await age();

    const reached = await Promise.all([ledger.foldSettled(), ledger.foldSettled(), ledger.foldSettled()]);

    const newest = await env.db.selectFrom('stock_ledger').select((eb) => eb.fn.max('id').as('id')).executeTakeFirstOrThrow();
    expect(reached.filter((id) => id !== undefined)).toContain(Number(newest.id));
    expect(await stockRead()).toEqual(countersOf(written));
    expect(await env.db.selectFrom('stock_ledger_settled').select(['sku_id', 'available', 'sold']).orderBy('sku_id').execute()).toEqual(
      SKUS.map((skuId, i) => ({ sku_id: skuId, available: 5 * Math.ceil((200 - i) / SKUS.length), sold: 0 })),
    );
  });

  it('leaves rows of the last hour to be read one by one', async () => {
    await startOver();
    const written: LedgerRow[] = [];
    await write([{ sku_id: 'LAMP', kind: 'adjust', ref: 'opening', qty: 10 }], written);
    await age();
    await write([{ sku_id: 'LAMP', kind: 'adjust', ref: 'recount', qty: -2 }], written);
    // what StockLedgerFoldBehind watches: before the fold the check reads two hours of rows one by one
    expect(await ledger.oldestUnfoldedAge()).toBeGreaterThanOrEqual(7_200);

    await ledger.foldSettled();
    expect(await ledger.oldestUnfoldedAge()).toBeLessThan(60);

    expect(await env.db.selectFrom('stock_ledger_settled').select(['sku_id', 'available']).execute()).toEqual([{ sku_id: 'LAMP', available: 10 }]);
    expect(await stockRead()).toEqual(countersOf(written));
  });
});
