import { sql } from 'kysely';
import type { OrderDb } from './connection.js';
import { overdueSince } from './mysql-clock.js';
import type { WebhookDeliveryRow, WebhookRow } from './schema.js';

/**
 * One transition of one order, as downstream systems (membership points, analytics, a CRM)
 * receive it. `eventId` is unique and increases per order with `version`: a consumer that
 * sees an event twice (delivery is at least once) drops the repeat by either.
 */
export interface OrderEvent {
  eventId: string;
  type: 'order.status_changed';
  orderId: string;
  orderType: string;
  parentOrderId: string | null;
  userId: string;
  version: number;
  from: string | null;
  action: string;
  to: string;
  actor: string;
  detail: string | null;
  at: string;
}

/** A MySQL named lock held on one connection: released by MySQL itself if the holder dies. */
export interface HeldLock {
  /** false once the lock's connection is gone (and so, for MySQL, the lock) */
  stillHeld(): Promise<boolean>;
}

export type NewWebhook = Pick<WebhookRow, 'webhook_id' | 'url' | 'secret' | 'description' | 'stream_cursor' | 'created_at'>;
export type NewWebhookDelivery = Omit<WebhookDeliveryRow, 'delivery_id'>;

/**
 * The outbox side of the order-event feed. The outbox is `order_history` itself: every
 * transition writes its history row in its own transaction, so an event exists exactly
 * when its transition committed, and a row whose `published_at` is null is still to be
 * published.
 */
export class OrderEventRepository {
  constructor(private readonly db: OrderDb) {}

  /**
   * The oldest unpublished events, in id order. Two transitions of one order never run at
   * once (the version check), so a later one's row always has the larger id: id order is
   * order per order id.
   */
  async unpublished(limit: number): Promise<OrderEvent[]> {
    const rows = await this.db
      .selectFrom('order_history as h')
      .innerJoin('orders as o', 'o.order_id', 'h.order_id')
      .select(['h.id', 'h.order_id', 'h.version', 'h.from_status', 'h.action', 'h.to_status', 'h.actor', 'h.detail', 'h.at', 'o.type', 'o.parent_order_id', 'o.user_id'])
      .where('h.published_at', 'is', null)
      .orderBy('h.id')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      eventId: String(row.id),
      type: 'order.status_changed',
      orderId: row.order_id,
      orderType: row.type,
      parentOrderId: row.parent_order_id,
      userId: row.user_id,
      version: row.version,
      from: row.from_status,
      action: row.action,
      to: row.to_status,
      actor: row.actor,
      detail: row.detail,
      at: row.at.toISOString(),
    }));
  }

  async markPublished(eventIds: readonly string[], at: Date): Promise<void> {
    if (eventIds.length === 0) return;
    await this.db.updateTable('order_history').set({ published_at: at }).where('id', 'in', eventIds.map(Number)).execute();
  }

  /** The outbox rows not yet published, counted up to `upTo` (the count then says at least that many). */
  async countUnpublished(upTo: number): Promise<number> {
    const row = await this.db
      .selectFrom((db) => db.selectFrom('order_history').select('id').where('published_at', 'is', null).limit(upTo).as('unpublished'))
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Runs `work` while this process holds the named lock of this database, so exactly one
   * publisher keeps the stream in order; answers false at once when another holds it.
   *
   * MySQL frees the lock when its connection closes, which a holder that went silent without
   * dying (a paused VM, a frozen process, a network partition) never does: the server would
   * wait out its wait_timeout (8 h by default) before it ended the connection, and nobody
   * would publish meanwhile. So the lock's connection has `silentForMs` as its wait_timeout:
   * left without a statement that long, MySQL ends it and the lock goes to another process.
   * `work` must use the lock (stillHeld) more often than that.
   */
  async whileHoldingLock(name: string, silentForMs: number, work: (lock: HeldLock) => Promise<void>): Promise<boolean> {
    return this.db.connection().execute(async (connection) => {
      const lockName = sql`CONCAT(${name}, ':', DATABASE())`;
      // set before the lock is taken: a holder frozen at any moment after holds it no longer than that
      await sql`SET SESSION wait_timeout = ${Math.max(1, Math.ceil(silentForMs / 1000))}`.execute(connection);
      try {
        const acquired = await sql<{ got: number | null }>`SELECT GET_LOCK(${lockName}, 0) AS got`.execute(connection);
        if (Number(acquired.rows[0]?.got) !== 1) return false;
        try {
          await work({
            async stillHeld() {
              const held = await sql<{ mine: number | null }>`SELECT IS_USED_LOCK(${lockName}) = CONNECTION_ID() AS mine`.execute(connection).catch(() => undefined);
              return Number(held?.rows[0]?.mine) === 1;
            },
          });
        } finally {
          await sql`SELECT RELEASE_LOCK(${lockName})`.execute(connection).catch(() => undefined);
        }
        return true;
      } finally {
        // the connection goes back to the pool, where it may rightly sit idle for long
        await sql`SET SESSION wait_timeout = @@GLOBAL.wait_timeout`.execute(connection).catch(() => undefined);
      }
    });
  }

  async createWebhook(webhook: NewWebhook): Promise<void> {
    await this.db.insertInto('webhooks').values(webhook).execute();
  }

  async webhooks(): Promise<WebhookRow[]> {
    return this.db.selectFrom('webhooks').selectAll().orderBy('created_at').orderBy('webhook_id').execute();
  }

  async findWebhook(webhookId: string): Promise<WebhookRow | undefined> {
    return this.db.selectFrom('webhooks').selectAll().where('webhook_id', '=', webhookId).executeTakeFirst();
  }

  async removeWebhook(webhookId: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('webhooks').where('webhook_id', '=', webhookId).executeTakeFirst();
    return Number(deleted.numDeletedRows) === 1;
  }

  /**
   * A delivery attempt goes to the log; a delivered one also moves the webhook's cursor `from`
   * what the batch was read after `to` its last entry, in one transaction. False when the cursor
   * had moved from `from` meanwhile (another publisher delivered the batch): it is left where it is.
   */
  async recordDelivery(delivery: NewWebhookDelivery, advance?: { from: string; to: string }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.insertInto('webhook_deliveries').values(delivery).execute();
      if (!advance) return false;
      const moved = await trx
        .updateTable('webhooks')
        .set({ stream_cursor: advance.to })
        .where('webhook_id', '=', delivery.webhook_id)
        .where('stream_cursor', '=', advance.from)
        .executeTakeFirst();
      return Number(moved.numUpdatedRows) === 1;
    });
  }

  /**
   * Deletes the delivery attempts recorded longer than `keptForMs` ago by MySQL's clock (a
   * removed webhook's with them) among the `chunk` oldest ids: a short range of the primary key,
   * never a scan of the log. Returns how many it deleted; 0 once the oldest is to be kept.
   */
  async pruneDeliveries(keptForMs: number, chunk: number): Promise<number> {
    const oldest = await this.db.selectFrom('webhook_deliveries').select('delivery_id').orderBy('delivery_id').limit(1).executeTakeFirst();
    if (!oldest) return 0;
    const removed = await this.db
      .deleteFrom('webhook_deliveries')
      .where('delivery_id', '<', Number(oldest.delivery_id) + chunk)
      .where('at', '<', overdueSince(keptForMs))
      .executeTakeFirst();
    return Number(removed.numDeletedRows);
  }

  /** The delivery log of one webhook, newest first, `before` a delivery id for paging. */
  async deliveries(webhookId: string, limit: number, before?: number): Promise<WebhookDeliveryRow[]> {
    let query = this.db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId);
    if (before !== undefined) query = query.where('delivery_id', '<', before);
    return query.orderBy('delivery_id', 'desc').limit(limit).execute();
  }
}
