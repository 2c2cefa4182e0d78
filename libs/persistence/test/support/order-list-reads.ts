import { createDb, OrderRepository, type OrderDb, type OrderListFilter } from '@orders/persistence';
import { CompiledQuery, Kysely, MysqlDialect, sql } from 'kysely';

/**
 * Reads of a list of orders as a test of its queries checks them: the pages a caller reads, the
 * same orders by the plainest query, and what MariaDB read for one page (its statement run again
 * on a database connection of its own, whose statements are logged).
 */
export class OrderListReads {
  private readonly statements: CompiledQuery[] = [];
  /** the same database, its statements logged: what a read sent, to run again */
  private readonly logged: OrderDb;

  constructor(
    private readonly db: OrderDb,
    mysqlUrl: string,
  ) {
    this.logged = new Kysely({ dialect: new MysqlDialect({ pool: createDb(mysqlUrl, 1).pool }), log: (event) => void this.statements.push(event.query) });
  }

  /** The first two pages of 20 from `before` (or the newest), each from the cursor of the one before, as the list routes read them. */
  async twoPages(filter: Omit<OrderListFilter, 'limit'>): Promise<string[][]> {
    const orders = new OrderRepository(this.db);
    const first = (await orders.listOrders({ ...filter, limit: 20 })).map((o) => o.orderId);
    const second = (await orders.listOrders({ ...filter, before: first.at(-1), limit: 20 })).map((o) => o.orderId);
    return [first, second];
  }

  /** The same orders by the plainest query: every order that matches, newest first. */
  async expected(where: ReturnType<typeof sql>): Promise<string[][]> {
    const { rows } = await sql<{ order_id: string }>`SELECT o.order_id FROM orders o WHERE ${where} ORDER BY o.order_id DESC LIMIT 40`.execute(this.db);
    const ids = rows.map((row) => row.order_id);
    return [ids.slice(0, 20), ids.slice(20)];
  }

  /** The first statement `read` sends, as it sent it. */
  async statementOf(read: (orders: OrderRepository) => Promise<unknown>): Promise<CompiledQuery> {
    this.statements.length = 0;
    await read(new OrderRepository(this.logged));
    return this.statements[0]!;
  }

  /** The plan of the first statement `read` sends (EXPLAIN). */
  async planOf<Step>(read: (orders: OrderRepository) => Promise<unknown>): Promise<Step[]> {
    const page = await this.statementOf(read);
    return (await this.logged.executeQuery<Step>(CompiledQuery.raw(`EXPLAIN ${page.sql}`, [...page.parameters]))).rows;
  }

  /** How many index and table entries MariaDB read (its Handler_read counters) running the first statement `read` sends, and that statement's text. */
  async entriesRead(read: (orders: OrderRepository) => Promise<unknown>): Promise<{ entries: number; sql: string }> {
    const page = await this.statementOf(read);
    return this.logged.connection().execute(async (connection) => {
      await sql`FLUSH STATUS`.execute(connection);
      await connection.executeQuery(CompiledQuery.raw(page.sql, [...page.parameters]));
      const { rows } = await sql<{ Variable_name: string; Value: string }>`SHOW SESSION STATUS LIKE 'Handler_read%'`.execute(connection);
      return { entries: rows.reduce((sum, row) => sum + Number(row.Value), 0), sql: page.sql };
    });
  }

  async close(): Promise<void> {
    await this.logged.destroy();
  }
}
