import { paymentDetail } from '@orders/persistence';
import { createTestEnv, writtenOrHeldUp, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentsThatPaid } from '../src/process-repository.js';

describe("a refund's transaction drawing from its order's payments, beside buyers paying newer orders", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('refund_locks');
  });
  afterAll(async () => env?.cleanup());

  /** Order ids grow with time, as the intake's do. */
  const orderId = (n: number) => `01KREFUND0${String(n).padStart(16, '0')}`;
  const payment = (n: number, status: 'PENDING' | 'SUCCEEDED') => ({
    payment_id: `${orderId(n)}-full-1`,
    order_id: orderId(n),
    purpose: 'full',
    attempt: 1,
    method: 'card',
    amount_cents: 2_500,
    status,
    transaction_id: status === 'SUCCEEDED' ? `tx-${n}` : null,
    paid_at: status === 'SUCCEEDED' ? new Date() : null,
  });

  it('holds up no payment opened for a newer order while it holds the payments it draws from, though its order paid last', async () => {
    await env.db.insertInto('payments').values(payment(1, 'SUCCEEDED')).execute();
    await env.db.insertInto('order_history').values({ order_id: orderId(1), version: 2, from_status: 'PENDING_PAYMENT', action: 'pay', to_status: 'PAID', actor: 'payment', detail: paymentDetail(`${orderId(1)}-full-1`, 'tx-1'), at: new Date() }).execute();

    let outcome: string | undefined;
    const drawn = await env.db.transaction().execute((trx) =>
      paymentsThatPaid(trx, orderId(1), {
        latestPaidFirst: true,
        whileLocked: async () => {
          outcome = await writtenOrHeldUp(env.db, env.db.insertInto('payments').values(payment(2, 'PENDING')).execute(), 'the payment');
        },
      }),
    );

    expect(outcome).toBe('written');
    expect(drawn.map((row) => row.payment_id)).toEqual([`${orderId(1)}-full-1`]);
  });
});
