import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './http-client.js';

/**
 * A proxy to Redis whose link fails once, where a test says, on the first write holding
 * `marker` (which reaches Redis and runs there): `breakAfter` keeps its answer from the
 * client, then resets the client's connection and refuses new ones for `outageMs` (a Redis
 * failing over, a network partition); `delayAnswersAfter` holds back its answer and every
 * answer after it for `delayMs`, the connection up (a Redis or a network too slow to answer);
 * `dieAfter` lets its answer through, then carries nothing more on that connection either way,
 * left open (the process that sent it killed right after). Each resolves once the fault is over; dieAfter once the write is seen.
 */
export interface FailingRedisLink {
  port: number;
  breakAfter(marker: string, outageMs: number): Promise<void>;
  delayAnswersAfter(marker: string, delayMs: number): Promise<void>;
  dieAfter(marker: string): Promise<void>;
  close(): Promise<void>;
}

interface Link {
  /** 'pass' the answers on, 'hold' them until passed on again, 'drop' them, 'last' pass the next on and then carry nothing either way ('dead') */
  answers: 'pass' | 'hold' | 'drop' | 'last' | 'dead';
  flush(): void;
}

export async function startFailingRedisLink(target: { host: string; port: number }): Promise<FailingRedisLink> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let armed: { marker: string; fail: (link: Link) => void } | null = null;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const held: Buffer[] = [];
    const link: Link = {
      answers: 'pass',
      flush() {
        link.answers = 'pass';
        for (const chunk of held.splice(0)) client.write(chunk);
      },
    };
    // a marker split over two reads is still found
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      if (link.answers === 'dead') return;
      upstream.write(chunk);
      const seen = tail + chunk.toString('latin1');
      tail = seen.slice(-256);
      if (!armed || !seen.includes(armed.marker)) return;
      const { fail } = armed;
      armed = null;
      fail(link);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (link.answers === 'pass' || link.answers === 'last') client.write(chunk);
      else if (link.answers === 'hold') held.push(chunk);
      if (link.answers === 'last') link.answers = 'dead';
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    breakAfter: (marker, outageMs) =>
      new Promise<void>((over) => {
        armed = {
          marker,
          fail(link) {
            link.answers = 'drop';
            // Redis has run the command by then
            setTimeout(() => {
              server.close();
              for (const socket of sockets) socket.resetAndDestroy();
              sockets.clear();
              setTimeout(() => server.listen(port, '127.0.0.1', over), outageMs);
            }, 20);
          },
        };
      }),
    delayAnswersAfter: (marker, delayMs) =>
      new Promise<void>((over) => {
        armed = {
          marker,
          fail(link) {
            link.answers = 'hold';
            setTimeout(() => (link.flush(), over()), delayMs);
          },
        };
      }),
    dieAfter: (marker) =>
      new Promise<void>((over) => {
        armed = {
          marker,
          fail(link) {
            link.answers = 'last';
            over();
          },
        };
      }),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}
