import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce, indexExists } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A buyer's uses of a coupon are numbered 1 up to its per-buyer limit (`use_no`), and a use
 * the order still holds ('used') holds its number (`held_use_no`), unique per coupon and
 * buyer: of two batches persisted at once that both found the buyer a use left (each read
 * before the other wrote), the second clashes with the first's row instead of recording a use
 * past the limit. A use given back ('restored') holds no number, whatever gives it back, so a
 * later order takes the number again. The uses held before are numbered in the order taken.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('coupon_redemptions').addColumn('use_no', 'integer'));
  // until the unique index (the last step) holds them, the numbers can be given again whole
  if (!(await indexExists(db, 'coupon_redemptions', 'coupon_redemptions_held_use'))) {
    await sql`
      UPDATE coupon_redemptions r
      JOIN (
        SELECT code, order_id, ROW_NUMBER() OVER (PARTITION BY code, user_id ORDER BY at, order_id) AS use_no
        FROM coupon_redemptions WHERE status = 'used'
      ) numbered ON numbered.code = r.code AND numbered.order_id = r.order_id
      SET r.use_no = numbered.use_no`.execute(db);
  }
  // virtual: TiDB adds no stored generated column to a table that exists
  await addColumnsOnce(
    db,
    db.schema
      .alterTable('coupon_redemptions')
      .addColumn('held_use_no', 'integer', (c) => c.generatedAlwaysAs(sql`CASE WHEN status = 'used' THEN use_no END`))
  );
  await createIndexOnce(db, db.schema.createIndex('coupon_redemptions_held_use').unique().on('coupon_redemptions').columns(['code', 'user_id', 'held_use_no']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('coupon_redemptions_held_use').on('coupon_redemptions').execute();
  await db.schema.alterTable('coupon_redemptions').dropColumn('held_use_no').dropColumn('use_no').execute();
}
