import { createDb, type Database, type OrderDb } from '@orders/persistence';
import { Kysely, MysqlAdapter, MysqlDialect, MysqlIntrospector, MysqlQueryCompiler, type DatabaseConnection, type Driver } from 'kysely';

/**
 * A database whose COMMITs get no answer, as when MySQL answers after MYSQL_QUERY_TIMEOUT_MS or
 * the connection drops on the way back: MySQL has committed (`committed`) or rolled back, and the
 * caller cannot tell which. Its own pool of two connections: `close` ends it.
 */
export function dbWhoseCommitsGoUnanswered(mysqlUrl: string, committed: boolean): { db: OrderDb; close(): Promise<void> } {
  const { pool } = createDb(mysqlUrl, 2);
  const driver = new MysqlDialect({ pool }).createDriver();
  const lossy: Driver = {
    init: () => driver.init(),
    acquireConnection: () => driver.acquireConnection(),
    beginTransaction: (connection, settings) => driver.beginTransaction(connection, settings),
    commitTransaction: async (connection: DatabaseConnection) => {
      await (committed ? driver.commitTransaction(connection) : driver.rollbackTransaction(connection));
      throw new Error('Query inactivity timeout');
    },
    rollbackTransaction: (connection) => driver.rollbackTransaction(connection),
    releaseConnection: (connection) => driver.releaseConnection(connection),
    destroy: () => driver.destroy(),
  };
  const db: OrderDb = new Kysely<Database>({
    dialect: { createAdapter: () => new MysqlAdapter(), createDriver: () => lossy, createIntrospector: (on) => new MysqlIntrospector(on), createQueryCompiler: () => new MysqlQueryCompiler() },
  });
  return { db, close: () => db.destroy() };
}
