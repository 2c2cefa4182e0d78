import { sql, type Kysely } from 'kysely';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The order history becomes the transactional outbox: every transition already writes its
 * history row in its own transaction, so a row with no `published_at` is an event not yet
 * on the stream. Webhooks registered by an admin, each with its delivery log.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('order_history').addColumn('published_at', sql`datetime(3)`).execute();
  // the publisher's query: unpublished rows in id order
  await db.schema.createIndex('order_history_unpublished').on('order_history').columns(['published_at', 'id']).execute();
  // history rows written before the outbox existed are not news to anyone
  await sql`UPDATE order_history SET published_at = at`.execute(db);

  await db.schema
    .createTable('webhooks')
    .addColumn('webhook_id', 'varchar(32)', (c) => c.primaryKey())
    .addColumn('url', 'varchar(2048)', (c) => c.notNull())
    .addColumn('secret', 'varchar(128)', (c) => c.notNull())
    .addColumn('description', 'varchar(500)')
    // the id of the last stream entry delivered: deliveries resume after it, in order
    .addColumn('stream_cursor', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('delivery_id', 'bigint', (c) => c.primaryKey().autoIncrement())
    .addColumn('webhook_id', 'varchar(32)', (c) => c.notNull())
    .addColumn('first_event_id', 'bigint', (c) => c.notNull())
    .addColumn('last_event_id', 'bigint', (c) => c.notNull())
    .addColumn('event_count', 'integer', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('error', 'varchar(500)')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('at', sql`datetime(3)`, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_deliveries_by_webhook').on('webhook_deliveries').columns(['webhook_id', 'delivery_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.dropTable('webhooks').execute();
  await db.schema.dropIndex('order_history_unpublished').on('order_history').execute();
  await db.schema.alterTable('order_history').dropColumn('published_at').execute();
}
