import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * payments.requested_at says from now on when a request for the payment was last sent to the
 * payment system, set before it goes (0030 set it once answered): a request whose answer never
 * came may have taken the money all the same. The payments pending when it lands that no answer
 * marked may have been sent: they count as sent when last changed, so the request job finding
 * their order closed asks the payment system what it has of them rather than failing them
 * unasked. Run again, it marks the payments opened since as sent too: each is then asked about
 * before it fails, which changes nothing else.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`UPDATE payments SET requested_at = updated_at WHERE status = 'PENDING' AND amount_cents > 0 AND requested_at IS NULL`.execute(db);
}

// a payment marked sent stays marked: nothing tells it from one sent since
export async function down(): Promise<void> {}
