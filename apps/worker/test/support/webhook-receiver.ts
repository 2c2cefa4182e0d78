import type { Server } from 'node:http';
import type { RedisClient } from '@orders/stock';

/** Starts a webhook receiver on a free loopback port; returns the URL a webhook registers for it. */
export async function listenAsReceiver(receiver: Server): Promise<string> {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
}

/** Events `from` … `from + count - 1` on the order-event stream, as the publisher adds them (one order each). */
export async function addOrderEvents(redis: RedisClient, streamKey: string, count: number, from = 1): Promise<void> {
  for (let i = from; i < from + count; i++) await redis.xadd(streamKey, '*', 'eventId', String(i), 'orderId', `O${i}`, 'event', JSON.stringify({ eventId: String(i), orderId: `O${i}`, version: 1 }));
}
