import { OrderRepository } from '@orders/persistence';
import { createTestEnv, holdRow, persistLampOrder, rowLockWaits, waitFor, writtenOrHeldUp, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The helpers the lock-wait tests stand on: they must see a wait of their own database's, and only that. */
describe("a test's view of the writes waiting for a row it holds", () => {
  let env: TestEnv;
  let other: TestEnv;
  const orderId = (n: number) => `01KROWLOCK${String(n).padStart(16, '0')}`;

  beforeAll(async () => {
    [env, other] = await Promise.all([createTestEnv('row_locks'), createTestEnv('row_locks_other')]);
    for (const tested of [env, other]) for (const n of [1, 2]) await persistLampOrder(new OrderRepository(tested.db), '01KROWLOCK', n);
  });
  afterAll(async () => Promise.all([env?.cleanup(), other?.cleanup()]));

  const bumpVersion = (tested: TestEnv, n: number) => tested.db.updateTable('orders').set({ version: 7 }).where('order_id', '=', orderId(n)).execute();

  it('answers held up for a write waiting for the held row, naming the table and the statement, and written for a write of another row', async () => {
    const held = await holdRow(env.db, 'orders', 'order_id', orderId(1));
    try {
      expect(await writtenOrHeldUp(env.db, bumpVersion(env, 2), 'the other order')).toBe('written');
      expect(await writtenOrHeldUp(env.db, bumpVersion(env, 1), 'the held order')).toBe(
        `held up on \`orders\` PRIMARY X locks rec but not gap, asked by update \`orders\` set \`version\` = 7 where \`order_id\` = '${orderId(1)}'`,
      );
    } finally {
      await held.release();
    }
  });

  it("counts a wait of another file's database as none of its own, while that file sees it", async () => {
    const held = await holdRow(other.db, 'orders', 'order_id', orderId(1));
    const waiting = bumpVersion(other, 1);
    try {
      await waitFor(async () => (await rowLockWaits(other.db)).length === 1, { what: "the other file's write waiting" });
      expect(await rowLockWaits(env.db)).toEqual([]);
    } finally {
      await held.release();
      await waiting;
    }
  });
});
