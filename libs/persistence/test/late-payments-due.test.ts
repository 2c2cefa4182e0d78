import { paymentDetail } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as latePaymentsDue from '../src/migrations/0019-late-payments-due.js';

describe('the migration that marks the late payments already recorded as due to go back', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('late_payments_due');
    // the table as it was before: no payment marked
    await latePaymentsDue.down(env.db);
  });
  afterAll(async () => env?.cleanup());

  it('marks the payments taken that neither paid their order nor went back, in whole or in part, and no other', async () => {
    const at = new Date(Date.UTC(2026, 0, 1));
    const payment = (paymentId: string, status: string, amountCents = 1_000) => ({ payment_id: paymentId, order_id: 'o1', purpose: 'full', attempt: Number(paymentId.at(-1)), method: 'card', amount_cents: amountCents, status, transaction_id: `tx-${paymentId}`, paid_at: at, created_at: at, updated_at: at });
    await env.db
      .insertInto('payments')
      .values([
        payment('o1-full-1', 'SUCCEEDED'), // paid the order
        payment('o1-full-2', 'SUCCEEDED'), // came late, never given back
        payment('o1-full-3', 'SUCCEEDED'), // came late, given back
        payment('o1-full-4', 'FAILED'),
        payment('o1-full-5', 'SUCCEEDED', 0), // nothing to give back
        payment('o1-full-6', 'SUCCEEDED'), // came late; a refund order drew from it, as refunds once did
      ])
      .execute();
    await env.db.insertInto('order_history').values({ order_id: 'o1', version: 2, from_status: 'PENDING_PAYMENT', action: 'pay', to_status: 'PAID', actor: 'payment', detail: paymentDetail('o1-full-1', 'tx-o1-full-1'), at }).execute();
    await env.db.insertInto('refunds').values({ refund_id: 'o1-full-3-refund', order_id: 'o1', kind: 'refund', status: 'SUCCEEDED', version: 1, reason: 'late payment', amount_cents: 1_000, items: '[]', created_at: at, updated_at: at }).execute();

    await env.db.insertInto('refund_parts').values({ part_id: 'r1', refund_id: 'r1', payment_id: 'o1-full-6', amount_cents: 400, status: 'SUCCEEDED', created_at: at, updated_at: at }).execute();

    await latePaymentsDue.up(env.db);

    const due = await env.db.selectFrom('payments').select(['payment_id', 'refund_due_at']).where('refund_due_at', 'is not', null).execute();
    expect(due).toEqual([{ payment_id: 'o1-full-2', refund_due_at: at }]);
  });
});
