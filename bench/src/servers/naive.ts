import Fastify from 'fastify';
import { createPool } from 'mysql2/promise';

/**
 * The peer a shop would otherwise write: per request, one MySQL transaction that locks
 * the hot SKU's row (SELECT ... FOR UPDATE), decrements it and inserts the order.
 * Its own tables (bench_naive_*) in the bench database.
 */
const pool = createPool({ uri: process.env.MYSQL_URL, connectionLimit: Number(process.env.MYSQL_POOL_SIZE ?? 16) });
const skuId = process.env.BENCH_SKU ?? 'naive-hot';
let n = 0;

const app = Fastify({ logger: false });
app.post('/naive', async (_request, reply) => {
  n += 1;
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [rows] = await conn.query('SELECT available FROM bench_naive_stock WHERE sku_id = ? FOR UPDATE', [skuId]);
    const available = (rows as Array<{ available: number }>)[0]?.available ?? 0;
    if (available < 1) {
      await conn.rollback();
      return reply.code(409).send({ code: 'OUT_OF_STOCK' });
    }
    await conn.query('UPDATE bench_naive_stock SET available = available - 1 WHERE sku_id = ?', [skuId]);
    const [result] = await conn.query('INSERT INTO bench_naive_orders (sku_id, user_id, qty, created_at) VALUES (?, ?, 1, NOW(3))', [skuId, `u${n}`]);
    await conn.commit();
    return reply.code(202).send({ orderId: String((result as { insertId: number }).insertId), status: 'ACCEPTED' });
  } catch (error) {
    await conn.rollback().catch(() => undefined);
    throw error;
  } finally {
    conn.release();
  }
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
