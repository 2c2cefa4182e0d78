import { sql, type Kysely } from 'kysely';
import { addColumnsOnce, createIndexOnce, tableExists } from './schema-steps.js';

// Migrations take Kysely<any>: they must keep working after the Database interface moves on.
/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * The order history becomes the transactional outbox: every transition already writes its
 * history row in its own transaction, so a row with no `published_at` is an event not yet
 * on the stream. Webhooks registered by an admin, each with its delivery log.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await addColumnsOnce(db, db.schema.alterTable('order_history').addColumn('published_at', sql`datetime(3)`));
  // the publisher's query: unpublished rows in id order
  await createIndexOnce(db, db.schema.createIndex('order_history_unpublished').on('order_history').columns(['published_at', 'id']));
  // history rows written before the outbox existed are not news to anyone; once the webhooks
  // table (the next step) exists, the rows unpublished are news written since
  if (!(await tableExists(db, 'webhooks'))) await sql`UPDATE order_history SET published_at = at`.execute(db);

  await db.schema
    .createTable('webhooks')
    .ifNotExists()
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
    .ifNotExists()
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
  await createIndexOnce(db, db.schema.createIndex('webhook_deliveries_by_webhook').on('webhook_deliveries').columns(['webhook_id', 'delivery_id']));
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.dropTable('webhooks').execute();
  await db.schema.dropIndex('order_history_unpublished').on('order_history').execute();
  await db.schema.alterTable('order_history').dropColumn('published_at').execute();
}
