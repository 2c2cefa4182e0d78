import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as couponUseNumbers from '../src/migrations/0016-coupon-use-numbers.js';

describe('the migration that numbers the coupon uses already recorded', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('coupon_use_numbers');
    // the table as it was before: uses without numbers
    await couponUseNumbers.down(env.db);
  });
  afterAll(async () => env?.cleanup());

  it('numbers each buyer’s held uses of each coupon in the order taken, and refuses a number held twice, but not one given back', async () => {
    const at = (minute: number) => new Date(Date.UTC(2025, 0, 1, 0, minute));
    const rows = [
      { code: 'ONCE', order_id: 'o1', user_id: 'ann', status: 'used' as const, at: at(1) },
      { code: 'ONCE', order_id: 'o2', user_id: 'ann', status: 'restored' as const, at: at(2) },
      // two uses of a once-per-buyer coupon, as two workers racing could record them
      { code: 'ONCE', order_id: 'o3', user_id: 'ann', status: 'used' as const, at: at(3) },
      { code: 'ONCE', order_id: 'o4', user_id: 'bob', status: 'used' as const, at: at(4) },
      { code: 'TWICE', order_id: 'o5', user_id: 'ann', status: 'used' as const, at: at(5) },
    ];
    await env.db.insertInto('coupon_redemptions').values(rows).execute();

    await couponUseNumbers.up(env.db);

    const numbered = await env.db.selectFrom('coupon_redemptions').select(['order_id', 'use_no', 'held_use_no']).orderBy('order_id').execute();
    expect(numbered).toEqual([
      { order_id: 'o1', use_no: 1, held_use_no: 1 },
      { order_id: 'o2', use_no: null, held_use_no: null },
      { order_id: 'o3', use_no: 2, held_use_no: 2 },
      { order_id: 'o4', use_no: 1, held_use_no: 1 },
      { order_id: 'o5', use_no: 1, held_use_no: 1 },
    ]);
    const bobsFirstAgain = { code: 'ONCE', order_id: 'o6', user_id: 'bob', status: 'used' as const, at: at(6), use_no: 1 };
    await expect(env.db.insertInto('coupon_redemptions').values(bobsFirstAgain).execute()).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
    // given back, bob's first use is free for his next order
    await env.db.updateTable('coupon_redemptions').set({ status: 'restored' }).where('order_id', '=', 'o4').execute();
    await env.db.insertInto('coupon_redemptions').values(bobsFirstAgain).execute();
  });
});
