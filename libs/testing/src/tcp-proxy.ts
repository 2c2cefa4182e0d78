import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './http-client.js';

export interface TcpProxy {
  port: number;
  /** The network fails: every open connection is reset and new ones are refused. */
  cut(): Promise<void>;
  /** The network is back: connections go through again. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy to `target`, so a test can take a shared service (MariaDB) away
 * from the system under test without stopping it for everybody else.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const port = await freePort();
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    open.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = () => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => (server.off('error', reject), resolve())));
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  await listen();
  return {
    port,
    async cut() {
      const closed = stopListening();
      // a reset, as a pulled cable or a crashed host looks to the client
      for (const socket of open) {
        if (socket.connecting) socket.destroy();
        else socket.resetAndDestroy();
      }
      open.clear();
      await closed;
    },
    restore: listen,
    async close() {
      const closed = stopListening();
      for (const socket of open) socket.destroy();
      open.clear();
      await closed;
    },
  };
}
