import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Pool } from 'undici';

export interface HttpAnswer {
  status: number;
  headers: Record<string, unknown>;
  // tests read answers as the JSON a client would see
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface HttpClient {
  request(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<HttpAnswer>;
  close(): Promise<void>;
}

const UNANSWERED_AFTER_MS = 30_000;

/** Real HTTP over a keep-alive pool, as a client of the published API would talk to it. */
export function httpClient(baseUrl: string, connections = 100): HttpClient {
  // undici waits 5 min for an answer: a request the server never answers must fail the test naming itself
  const pool = new Pool(baseUrl, { connections, pipelining: 1, headersTimeout: UNANSWERED_AFTER_MS, bodyTimeout: UNANSWERED_AFTER_MS });
  return {
    async request(method, path, { token, body, headers = {} } = {}) {
      const sent = pool.request({
        method: method as 'GET',
        path,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const response = await sent.catch((error: unknown) => {
        throw new Error(`${method} ${path} got no answer: ${String(error)}`, { cause: error });
      });
      const text = await response.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (e.g. /metrics): keep the text
      }
      return { status: response.statusCode, headers: response.headers, body: parsed };
    },
    close: () => pool.close(),
  };
}

/** Where the kernel picks the local ports of outgoing connections (Linux's default when it cannot be read). */
function ephemeralPortsStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

const LOWEST_TEST_PORT = 10_000;
// a kernel set to hand out ports from low down leaves no range of its own: then any port above ours
const EPHEMERAL_PORTS_START = ephemeralPortsStart();
const HIGHEST_TEST_PORT = EPHEMERAL_PORTS_START > LOWEST_TEST_PORT + 1_000 ? EPHEMERAL_PORTS_START - 1 : 65_535;

/**
 * The part of the test ports this process picks from. Each vitest worker (VITEST_POOL_ID 1..maxWorkers)
 * has its own: a port one file frees for a while (a Redis it restarts, a link it cuts and listens on
 * again) was otherwise free to be handed to a file in another worker, which then took it first.
 */
function portsOfThisWorker(): { lowest: number; count: number } {
  const slices = 8;
  const pool = Number(process.env.VITEST_POOL_ID);
  const all = HIGHEST_TEST_PORT - LOWEST_TEST_PORT + 1;
  if (!Number.isInteger(pool) || pool < 1) return { lowest: LOWEST_TEST_PORT, count: all };
  const count = Math.floor(all / slices);
  return { lowest: LOWEST_TEST_PORT + ((pool - 1) % slices) * count, count };
}

/**
 * Ports browsers refuse to load pages from (Chromium's and Firefox's restricted ports, net::ERR_UNSAFE_PORT)
 * in the test range: the console's tests would find every page of an api listening there blocked.
 */
const BROWSER_REFUSED_PORTS = new Set([10_080]);

/** Ports this process handed out: its files run one after another and one may still hold (or come back to) a port. */
const handedOut = new Set<number>();

/**
 * A port free now, for a server the test starts later. It comes from below the ephemeral
 * range: a port the kernel handed out there could be taken by any outgoing connection
 * (to MySQL, to Redis) of a test running in parallel before the server listens on it.
 * None is handed out twice by this process, nor by two vitest workers.
 */
export async function freePort(): Promise<number> {
  const { lowest, count } = portsOfThisWorker();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = lowest + randomInt(count);
    if (handedOut.has(port) || BROWSER_REFUSED_PORTS.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${lowest} and ${lowest + count - 1} after 100 attempts`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
