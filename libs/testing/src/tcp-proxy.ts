import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './http-client.js';

export interface TcpProxy {
  port: number;
  /** The network fails: every open connection is reset and new ones are refused. */
  cut(): Promise<void>;
  /** The network is back: connections go through again. */
  restore(): Promise<void>;
  /**
   * The network stops carrying anything, as a frozen link or a server that stopped answering
   * looks to the client: open connections stay open, new ones are accepted, no byte goes
   * through either way and nothing is reset.
   */
  freeze(): void;
  /**
   * Only the answers stop: requests still reach the server, which runs them, and what it
   * answers on the connections open now waits in the proxy, as behind a slow link back.
   */
  holdAnswers(): void;
  /** What was held goes through, and the connections carry on. */
  thaw(): void;
  /**
   * A failover behind one address (a DNS name, a virtual IP), as the clients connected before it
   * see it: their connections go silent for good, nothing answered and nothing reset (the old
   * server gone, its packets dropped), while a connection opened now reaches a server that answers.
   */
  failOver(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP proxy to `target`, so a test can take a shared service (MariaDB) away
 * from the system under test without stopping it for everybody else.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const port = await freePort();
  const open = new Set<Socket>();
  const links = new Set<{ hold(): void; holdAnswers(): void; forward(): void }>();
  let frozen = false;
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    // each direction piped at most once: piping it again would send its bytes twice
    let requestsFlow = false;
    let answersFlow = false;
    const link = {
      hold() {
        if (requestsFlow) client.unpipe(upstream).pause();
        requestsFlow = false;
        link.holdAnswers();
      },
      holdAnswers() {
        if (answersFlow) upstream.unpipe(client).pause();
        answersFlow = false;
      },
      forward() {
        if (!requestsFlow) client.pipe(upstream);
        if (!answersFlow) upstream.pipe(client);
        requestsFlow = answersFlow = true;
      },
    };
    open.add(client).add(upstream);
    links.add(link);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      links.delete(link);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    if (frozen) link.hold();
    else link.forward();
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
      links.clear();
      await closed;
    },
    restore: listen,
    freeze() {
      frozen = true;
      for (const link of links) link.hold();
    },
    holdAnswers() {
      for (const link of links) link.holdAnswers();
    },
    thaw() {
      frozen = false;
      for (const link of links) link.forward();
    },
    failOver() {
      for (const link of links) link.hold();
      // never thawed: only their sockets' end takes them out of `open`
      links.clear();
    },
    async close() {
      const closed = stopListening();
      for (const socket of open) socket.destroy();
      open.clear();
      links.clear();
      await closed;
    },
  };
}
