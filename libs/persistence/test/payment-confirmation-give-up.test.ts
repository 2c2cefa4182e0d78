import { ProcessRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIVE_MINUTES_MS = 5 * 60_000;
const A_DAY_MS = 24 * 60 * 60_000;

/**
 * A payment is opened when the buyer pays, but sent only once the payment system's breaker lets it
 * go: in an outage, hours later. Its give-up (PAYMENT_CONFIRMATION_GIVE_UP_MS) runs from its first
 * sending, or a payment sent a day after it was opened would be given up at its first lost
 * callback, never asked about again.
 */
describe('a payment sent long after it was opened, its callback lost', () => {
  let env: TestEnv;
  let payments: ProcessRepository;

  beforeAll(async () => {
    env = await createTestEnv('payment_confirmation_give_up');
    payments = new ProcessRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  /** A payment of order `orderId` opened `openedHoursAgo` ago, pending since. */
  async function opened(orderId: string, openedHoursAgo: number): Promise<string> {
    const paymentId = `${orderId}-full-1`;
    const at = new Date(Date.now() - openedHoursAgo * 60 * 60_000);
    await env.db
      .insertInto('payments')
      .values({ payment_id: paymentId, order_id: orderId, purpose: 'full', attempt: 1, method: 'card', amount_cents: 10_000, status: 'PENDING', transaction_id: null, paid_at: null, created_at: at, updated_at: at })
      .execute();
    return paymentId;
  }
  /** Its requests so far were sent `minutesAgo` earlier than they were. */
  const sentEarlier = (paymentId: string, minutesAgo: number) =>
    sql`UPDATE payments SET requested_at = requested_at - INTERVAL ${minutesAgo} MINUTE, first_requested_at = first_requested_at - INTERVAL ${minutesAgo} MINUTE WHERE payment_id = ${paymentId}`.execute(env.db);
  const unconfirmed = async (paymentId: string) => (await payments.paymentsUnconfirmed(FIVE_MINUTES_MS, { offset: 0, limit: 10 }, [paymentId], A_DAY_MS)).map((payment) => payment.paymentId);

  it('is asked about again after PAYMENT_CONFIRMATION_WAIT_MS, a day and more after it was opened, and not counted given up', async () => {
    const paymentId = await opened('HELD-BY-THE-BREAKER', 26);
    // sent 6 minutes ago (the payment system back then), never reported on
    await payments.notePaymentRequested(paymentId);
    await sentEarlier(paymentId, 6);

    expect({ askedAgain: await unconfirmed(paymentId), givenUp: await payments.paymentsGivenUp(A_DAY_MS, [paymentId]) }).toEqual({ askedAgain: [paymentId], givenUp: 0 });
  });

  it('a request the open breaker kept from going starts no day: the day runs from the request that went', async () => {
    const paymentId = await opened('BREAKER-OPEN-A-DAY', 30);
    // tried 25 h ago, the breaker open: it never went
    await payments.notePaymentRequested(paymentId);
    await sentEarlier(paymentId, 25 * 60);
    await payments.notePaymentRequestVoid(paymentId, null);
    // sent 6 minutes ago, never reported on
    await payments.notePaymentRequested(paymentId);
    await sentEarlier(paymentId, 6);

    expect({ askedAgain: await unconfirmed(paymentId), givenUp: await payments.paymentsGivenUp(A_DAY_MS, [paymentId]) }).toEqual({ askedAgain: [paymentId], givenUp: 0 });
  });

  it('is given up a day after it was first sent, however often asked about since', async () => {
    const paymentId = await opened('SENT-A-DAY-AGO', 30);
    await payments.notePaymentRequested(paymentId);
    await sentEarlier(paymentId, 25 * 60);
    // asked for again 6 minutes ago, its order still owing it
    await payments.notePaymentRequested(paymentId);
    await sentEarlier(paymentId, 6);

    expect({ askedAgain: await unconfirmed(paymentId), givenUp: await payments.paymentsGivenUp(A_DAY_MS, [paymentId]) }).toEqual({ askedAgain: [], givenUp: 1 });
  });

  it('sent before its first sending was recorded, counts from its opening, as before', async () => {
    const paymentId = await opened('SENT-BEFORE-THE-COLUMN', 25);
    await sql`UPDATE payments SET requested_at = UTC_TIMESTAMP(3) - INTERVAL 6 MINUTE WHERE payment_id = ${paymentId}`.execute(env.db);

    expect({ askedAgain: await unconfirmed(paymentId), givenUp: await payments.paymentsGivenUp(A_DAY_MS, [paymentId]) }).toEqual({ askedAgain: [], givenUp: 1 });
  });
});
