import type { Kysely } from 'kysely';
import { createIndexOnce } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * An order's coupon use is read by its order id alone (a cancellation finding the use it gives
 * back, a payment commit putting back a reservation Redis lost, an order's benefits, the stock
 * check's claims), where the key starts with the code: each read went through every redemption
 * ever made.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, db.schema.createIndex('coupon_redemptions_order').on('coupon_redemptions').columns(['order_id']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('coupon_redemptions_order').on('coupon_redemptions').execute();
}
