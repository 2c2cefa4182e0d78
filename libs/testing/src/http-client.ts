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

/** Real HTTP over a keep-alive pool, as a client of the published API would talk to it. */
export function httpClient(baseUrl: string, connections = 100): HttpClient {
  const pool = new Pool(baseUrl, { connections, pipelining: 1 });
  return {
    async request(method, path, { token, body, headers = {} } = {}) {
      const response = await pool.request({
        method: method as 'GET',
        path,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
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

/** A port nobody listens on right now, for a process the test starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
