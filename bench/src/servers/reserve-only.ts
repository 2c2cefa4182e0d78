import { Inventory, orderIdFactory } from '@orders/stock';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

/**
 * The second ceiling: Fastify plus exactly one Redis Lua reservation (the product's own
 * reserveStock script) per request; no auth, no validation, no queue.
 */
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const inventory = new Inventory(redis, process.env.REDIS_KEY_PREFIX ?? 'bench:', {
  standardPaymentTimeoutMs: 1_800_000,
  flashSalePaymentTimeoutMs: 600_000,
  idempotencyTtlMs: 86_400_000,
});
const skuId = process.env.BENCH_SKU ?? 'bench-reserve';
// the intake's own id generator: ulid's default draws 16 random bytes from OpenSSL one by one
const newOrderId = orderIdFactory();
let n = 0;
const address = { name: 'A', phone: '1', line1: 'x', city: 'y', postalCode: 'z', country: 'GB' };

const app = Fastify({ logger: false });
app.post('/reserve', async () => {
  n += 1;
  const now = new Date();
  const { order } = await inventory.reserveStock({
    orderId: newOrderId(now.getTime()),
    userId: `u${n % 50_000}`,
    idempotencyKey: `${process.pid}-${n}`,
    bodyHash: 'h',
    requestedType: null,
    items: [{ skuId, qty: 1 }],
    payload: { address, couponCode: null },
    now,
  });
  return { orderId: order.orderId };
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => void app.close().then(() => redis.disconnect()).then(() => process.exit(0)));
