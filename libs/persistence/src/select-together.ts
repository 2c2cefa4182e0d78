import { CompiledQuery, type Compilable, type InferResult } from 'kysely';
import type { OrderDb } from './connection.js';

/**
 * The rows of several SELECTs, sent to MySQL as one multi-statement query: one round trip, one
 * socket write and one reply for them all. Sent apart, even at once on as many pool connections,
 * each costs the process a write, a reply to parse and a connection's turn, and MySQL a packet of
 * its own: an order's view reads five tables, and a buyer's status poll cost the api twice the CPU
 * and MySQL half as much again (bench/README item 49). Each statement is Kysely's, its values sent
 * as parameters, as it would be alone; the pool allows several statements a query for this
 * (connection.ts).
 */
export async function selectTogether<const Q extends readonly Compilable<unknown>[]>(db: OrderDb, queries: Q): Promise<{ -readonly [K in keyof Q]: InferResult<Q[K]> }> {
  const compiled = queries.map((query) => query.compile());
  const { rows } = await db.executeQuery(CompiledQuery.raw(compiled.map((query) => query.sql).join(';\n'), compiled.flatMap((query) => query.parameters)));
  // mysql2 answers one statement with its rows, several with a list of their rows
  return (compiled.length === 1 ? [rows] : rows) as { -readonly [K in keyof Q]: InferResult<Q[K]> };
}
