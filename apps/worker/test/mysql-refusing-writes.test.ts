import { connect, createServer, type Socket } from 'node:net';
import { QUEUE } from '@orders/queues';
import { buyerAddress, createSku, createTestEnv, freePort, signToken, spawnApp, startApiProcess, waitFor, type ApiProcess, type SpawnedProcess, type TestEnv } from '@orders/testing';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A loopback proxy to MariaDB that, while `readOnly`, answers every write statement (COM_QUERY
 * beginning INSERT/UPDATE/DELETE/REPLACE) with the server error `refusal`: as a server started
 * with --read-only does (ERR 1290 ER_OPTION_PREVENTS_STATEMENT: a failover's old primary).
 * Reads, BEGIN/COMMIT/ROLLBACK and the handshake go through untouched.
 */
async function startReadOnlySwitch(target: { host: string; port: number }, refusal: { errno: number; message: string }) {
  const port = await freePort();
  const state = { readOnly: false, refused: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = () => (client.destroy(), upstream.destroy(), sockets.delete(client), sockets.delete(upstream));
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.pipe(client);
    let buffered = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4) {
        const length = buffered.readUIntLE(0, 3);
        if (buffered.length < 4 + length) break;
        const packet = buffered.subarray(0, 4 + length);
        buffered = buffered.subarray(4 + length);
        const seq = packet[3];
        const isWrite = seq === 0 && packet[4] === 0x03 && /^\s*(insert|update|delete|replace)\b/i.test(packet.subarray(5, 64).toString('utf8'));
        if (state.readOnly && isWrite) {
          state.refused++;
          const errno = Buffer.alloc(2);
          errno.writeUInt16LE(refusal.errno);
          const payload = Buffer.concat([Buffer.from([0xff]), errno, Buffer.from('#HY000'), Buffer.from(refusal.message)]);
          const header = Buffer.alloc(4);
          header.writeUIntLE(payload.length, 0, 3);
          header[3] = 1;
          client.write(Buffer.concat([header, payload]));
        } else {
          upstream.write(packet);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    state,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const REFUSALS = [
  { errno: 1290, what: 'read-only (a failover: the old primary still takes connections and refuses writes)', message: 'The MariaDB server is running with the --read-only option so it cannot execute this statement' },
  // a full table or disk (1114, 1021) and the user's connection limit are answered as it is (mysql-errors.ts: REFUSING_WRITES_FOR_NOW)
];

describe.each(REFUSALS)('MySQL $what for a few seconds', (refusal) => {
  let proxy: Awaited<ReturnType<typeof startReadOnlySwitch>>;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;
  let orders: Queue;

  beforeAll(async () => {
    proxy = await startReadOnlySwitch({ host: '127.0.0.1', port: 3306 }, refusal);
    env = await createTestEnv(`refuse_writes_${refusal.errno}`, {
      WORKER_QUEUES: 'orders',
      // a short retry budget: before the fix the job failed for good within the refusal's 4 s
      JOB_ATTEMPTS: '3',
      JOB_BACKOFF_MS: '200',
      STRANDED_ORDER_AFTER_MS: '3000',
      SWEEP_INTERVAL_MS: '1000',
    });
    const throughProxy = new URL(env.env.MYSQL_URL!);
    throughProxy.port = String(proxy.port);
    // the api reaches MySQL directly; only the worker goes through the read-only switch
    api = await startApiProcess(env.env, 10);
    worker = spawnApp('worker', { ...env.env, MYSQL_URL: throughProxy.toString(), WORKER_METRICS_PORT: '0' });
    orders = new Queue(QUEUE.orders, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    await waitFor(async () => (await orders.getWorkers()).length > 0, { what: 'the worker to take orders jobs', timeoutMs: 45_000 });
  });

  afterAll(async () => {
    await worker?.kill();
    await api?.close();
    await orders?.close();
    await proxy?.close();
    await env?.cleanup();
  });

  it('keeps the persist job waiting while MySQL refuses writes, and writes the order once it takes them again', { timeout: 60_000 }, async () => {
    const admin = signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' });
    await createSku(api, admin, { skuId: 'RO-SKU', title: 'Lamp', priceCents: 4_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });

    proxy.state.readOnly = true;
    const answer = await api.request('POST', '/v1/orders', {
      token: signToken(env.config.AUTH_JWT_SECRET, { sub: 'buyer-ro', role: 'buyer' }),
      headers: { 'idempotency-key': 'ro-1' },
      body: { items: [{ skuId: 'RO-SKU', qty: 1 }], address: buyerAddress },
    });
    expect(answer.status).toBe(202);
    const orderId = answer.body.orderId as string;
    await waitFor(async () => proxy.state.refused > 0, { what: 'the worker to try writing the order', timeoutMs: 10_000 });
    // read-only for 4 s: a short failover
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    proxy.state.readOnly = false;

    // the job is not failed for good meanwhile (attempts and the dead letters are for jobs that fail on their own)
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await orders.getFailed()).map((job) => `${job.id}: ${job.failedReason} (attempts ${job.attemptsMade})`)).toEqual([]);
    await waitFor(async () => (await env.db.selectFrom('orders').select('order_id').where('order_id', '=', orderId).executeTakeFirst()) ?? false, {
      what: 'the order accepted during the read-only spell to reach MySQL',
      timeoutMs: 15_000,
    });
  });
});
