import { RefundRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HALF_AN_HOUR_MS = 30 * 60_000;
const A_DAY_MS = 24 * 60 * 60_000;

/**
 * A refund is drawn when it falls due, but sent only once nothing holds it: the warehouse taking
 * its units out of a parcel it holds, the payment system's refunds coming back after an outage.
 * Its give-up (REFUND_CONFIRMATION_GIVE_UP_MS) runs from its sending, or a part sent a day after it
 * was drawn would be given up at its first lost callback, never asked for again.
 */
describe('a refund part sent long after it was drawn, its callback lost', () => {
  let env: TestEnv;
  let refunds: RefundRepository;

  beforeAll(async () => {
    env = await createTestEnv('refund_confirmation_give_up');
    refunds = new RefundRepository(env.db);
  });
  afterAll(async () => env?.cleanup());

  /** A refund of order `orderId` drawn `drawnHoursAgo` ago, its one part pending until now. */
  async function drawn(orderId: string, drawnHoursAgo: number): Promise<string> {
    const partId = `${orderId}-rf`;
    await env.db
      .insertInto('refunds')
      .values({ refund_id: partId, order_id: orderId, kind: 'refund', status: 'PENDING', version: 1, reason: 'cancelled', amount_cents: 5_000, items: '[]', created_at: new Date(), updated_at: new Date() })
      .execute();
    await env.db.insertInto('refund_parts').values({ part_id: partId, refund_id: partId, payment_id: `${orderId}-full-1`, amount_cents: 5_000, status: 'PENDING' }).execute();
    await sql`UPDATE refund_parts SET created_at = UTC_TIMESTAMP(3) - INTERVAL ${drawnHoursAgo * 60} MINUTE WHERE part_id = ${partId}`.execute(env.db);
    return partId;
  }

  it('is asked for again after REFUND_CONFIRMATION_WAIT_MS, a day and more after it was drawn, and not counted given up', async () => {
    const partId = await drawn('HELD-FOR-THE-WAREHOUSE', 26);
    // sent 31 minutes ago (the warehouse took the units out then), accepted, never confirmed
    await refunds.markPartSent(partId, new Date(Date.now() - 31 * 60_000));

    expect({
      askedAgain: (await refunds.partsUnconfirmed('HELD-FOR-THE-WAREHOUSE', HALF_AN_HOUR_MS, A_DAY_MS)).map((part) => part.partId),
      orders: await refunds.ordersWithPartsUnconfirmed(HALF_AN_HOUR_MS, { offset: 0, limit: 10 }, A_DAY_MS),
      givenUp: await refunds.partsGivenUp(A_DAY_MS),
    }).toEqual({ askedAgain: [partId], orders: ['HELD-FOR-THE-WAREHOUSE'], givenUp: 0 });
  });

  it('is given up a day after it was sent', async () => {
    const partId = await drawn('SENT-A-DAY-AGO', 30);
    await refunds.markPartSent(partId, new Date(Date.now() - 25 * 60 * 60_000));

    expect({
      askedAgain: await refunds.partsUnconfirmed('SENT-A-DAY-AGO', HALF_AN_HOUR_MS, A_DAY_MS),
      givenUp: await refunds.partsGivenUp(A_DAY_MS),
    }).toEqual({ askedAgain: [], givenUp: 1 });
  });

  it("is due again under its own id once an admin asks for it after it was given up, not before; the admin's repeat changes nothing", async () => {
    const partId = await drawn('ASKED-AGAIN-BY-AN-ADMIN', 30);
    await refunds.markPartSent(partId, new Date(Date.now() - 23 * 60 * 60_000));
    await refunds.markSent(partId, new Date());
    // still asked about by the sweep: the admin has nothing to ask for
    expect(await refunds.askFailedPartsAgain(partId, new Date(), A_DAY_MS)).toEqual({ askedAgain: [], sentAgain: [], askedBefore: false });

    await sql`UPDATE refund_parts SET sent_at = UTC_TIMESTAMP(3) - INTERVAL 25 HOUR WHERE part_id = ${partId}`.execute(env.db);
    expect(await refunds.askFailedPartsAgain(partId, new Date(), A_DAY_MS)).toMatchObject({ askedAgain: [], sentAgain: [{ partId, status: 'PENDING' }], askedBefore: false });
    const due = await refunds.find(partId);
    expect([due?.status, due?.parts.map((part) => [part.partId, part.status]), due?.history.at(-1)?.actor]).toEqual(['PENDING', [[partId, 'PENDING']], 'admin']);
    expect(await refunds.askFailedPartsAgain(partId, new Date(), A_DAY_MS)).toEqual({ askedAgain: [], sentAgain: [], askedBefore: true });
  });
});
