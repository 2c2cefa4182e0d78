// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { awaitSchema, migrateDatabase } from '@orders/persistence';
import { TEST_MYSQL_URL, createTestEnv, type TestEnv } from '@orders/testing';
import { sql } from 'kysely';
import { createConnection, type Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from '../../worker/test/support/order-system.js';

/**
 * MYSQL_URL naming a database that exists already (a DBA's, a managed MySQL's), created with the
 * server's default collation, which is case-insensitive (utf8mb4_0900_ai_ci on MySQL 8.4,
 * utf8mb4_general_ci on MariaDB): CREATE DATABASE IF NOT EXISTS leaves it so, and ids compared
 * in its tables, opaque and case-sensitive, would compare without case.
 */
const urlOf = (database: string) => {
  const url = new URL(TEST_MYSQL_URL);
  url.pathname = `/${database}`;
  return url.toString();
};

async function server(): Promise<Connection> {
  const url = new URL(TEST_MYSQL_URL);
  return createConnection({ host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username) || 'root', password: decodeURIComponent(url.password) });
}

/** A database as a DBA or a cloud console creates it, with a case-insensitive default. */
async function createCaseInsensitive(database: string): Promise<void> {
  const connection = await server();
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await connection.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await connection.end();
  }
}

async function drop(database: string): Promise<void> {
  const connection = await server();
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
  } finally {
    await connection.end();
  }
}

/** The database's default collation, and its text columns that are not binary. */
async function collations(database: string): Promise<{ database: string; notBinary: string[] }> {
  const connection = await server();
  try {
    const [schema] = await connection.query<any[]>('SELECT DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
    const [columns] = await connection.query<any[]>(
      "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME NOT LIKE '%\\_bin'",
      [database],
    );
    return { database: schema[0].collation, notBinary: columns.map((column) => column.name) };
  } finally {
    await connection.end();
  }
}

describe('a database created case-insensitive before the first start', () => {
  const fresh = `rv_abuse_case_new_${process.pid}`;
  const built = `rv_abuse_case_built_${process.pid}`;

  afterAll(async () => {
    await drop(fresh);
    await drop(built);
  });

  it('is migrated into one whose text compares as bytes', async () => {
    await createCaseInsensitive(fresh);
    await migrateDatabase(urlOf(fresh));
    const after = await collations(fresh);
    expect({ binary: after.database.endsWith('_bin'), notBinary: after.notBinary }).toEqual({ binary: true, notBinary: [] });
  });

  it('is refused, naming a column and the statements that fix it, once its tables were built case-insensitive', async () => {
    // as an earlier build left it: its tables took the database's case-insensitive collation
    await createCaseInsensitive(built);
    await migrateDatabase(urlOf(built));
    const connection = await server();
    try {
      await connection.query(`ALTER TABLE \`${built}\`.\`orders\` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    } finally {
      await connection.end();
    }
    const refused = await migrateDatabase(urlOf(built)).then(() => 'migrated', (error: Error) => error.message);
    expect(refused).toMatch(new RegExp(`MySQL database ${built} compares text without case \\(its columns orders\\.\\w+ \\(utf8mb4_general_ci\\)`));
    expect(refused).toContain(`ALTER TABLE \`${built}\`.\`orders\` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;`);
    // a process started without migrating (the migrate step refused, no migration left pending) does not serve on it either
    const waited = await awaitSchema(urlOf(built), { waiting: () => undefined }).then(() => 'served', (error: Error) => error.message);
    expect(waited).toBe(refused);
  });
});

describe('buyers and merchants whose ids differ only in case, on a database created before the first start', () => {
  const database = `rv_abuse_case_${process.pid}`;
  let system: OrderSystem;
  const template = process.env.TEST_MYSQL_TEMPLATE;

  beforeAll(async () => {
    await createCaseInsensitive(database);
    // migrated by the start itself, as npm start migrates the database MYSQL_URL names
    delete process.env.TEST_MYSQL_TEMPLATE;
    try {
      system = await startOrderSystem('ids_in_case', { MYSQL_URL: urlOf(database) });
    } finally {
      if (template !== undefined) process.env.TEST_MYSQL_TEMPLATE = template;
    }
    const admin = system.token('ops', 'admin');
    await system.createSku({ skuId: 'BOOK', priceCents: 2_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement' });
    expect((await system.request('PUT', '/v1/admin/member-levels/gold', { token: admin, body: { discountPercent: 50, freeShipping: true } })).status).toBe(200);
    expect((await system.request('PUT', '/v1/admin/members/u7Kq2', { token: admin, body: { level: 'gold' } })).status).toBe(200);
  });
  afterAll(async () => {
    await system?.close();
    await drop(database);
  });

  it("gives one buyer neither another's member level nor another's orders, their ids differing in case only", { timeout: 60_000 }, async () => {
    // two accounts of the identity provider, whose opaque ids differ in case only
    const gold = await system.checkout('u7Kq2', [{ skuId: 'BOOK', qty: 1 }]);
    await system.waitForStatus(gold, 'PENDING_PAYMENT');
    const other = await system.checkout('U7kQ2', [{ skuId: 'BOOK', qty: 1 }]);
    const priced = await system.waitForStatus(other, 'PENDING_PAYMENT');
    const listed = (await system.request('GET', '/v1/orders', { token: system.token('U7kQ2') })).body.items.map((o: any) => `${o.orderId} of ${o.userId}`);
    // and a merchant whose id differs in case from the shop's lists none of the shop's orders, nor their buyers' addresses
    const merchantListed = (await system.request('GET', '/v1/orders', { token: system.token('SHOP', 'merchant') })).body.items.map((o: any) => o.orderId);
    const shopListed = (await system.request('GET', '/v1/orders', { token: system.token('shop', 'merchant') })).body.items.map((o: any) => o.orderId);
    expect({ payable: priced.amounts.payableCents, listed, merchantListed, shopListed: shopListed.sort() }).toEqual({
      payable: 2_000,
      listed: [`${other} of U7kQ2`],
      merchantListed: [],
      shopListed: [gold, other].sort(),
    });
  });
});

/**
 * The collation check before migrations on a database that holds,
 * beside the shop's tables, a reporting view a DBA made from a mysql client (its session's
 * collation is the server's default, case-insensitive, for the view's computed text column).
 * Every table of the shop compares as bytes; the view holds no id compared by any process.
 */
describe('a database with a reporting view beside the shop\'s tables', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('collation_beside_a_view');
    await env.db.connection().execute(async (conn) => {
      await sql`SET NAMES utf8mb4 COLLATE utf8mb4_general_ci`.execute(conn);
      await sql.raw("CREATE VIEW order_report AS SELECT order_id, DATE_FORMAT(accepted_at, '%Y-%m-%d') AS accepted_day FROM orders").execute(conn);
      await sql`SET NAMES utf8mb4 COLLATE utf8mb4_bin`.execute(conn);
    });
  });
  afterAll(async () => {
    await sql`DROP VIEW IF EXISTS order_report`.execute(env.db).catch(() => undefined);
    await env?.cleanup();
  });

  it('is migrated again, and processes start on it (nothing is case-insensitive but the view)', async () => {
    const migrated = await migrateDatabase(env.config.MYSQL_URL, { stillMigrating: () => undefined }).then(() => 'migrated', (error: Error) => error.message);
    const served = await awaitSchema(env.config.MYSQL_URL, { waiting: () => undefined }).then(() => 'served', (error: Error) => error.message);
    expect({ migrated, served }).toEqual({ migrated: 'migrated', served: 'served' });
  });
});
