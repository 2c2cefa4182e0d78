import { buildApp, connectApi } from '@orders/api';
import { httpClient, signToken, type HttpClient, type TestEnv } from '@orders/testing';
import type { FastifyInstance } from 'fastify';

export interface ApiUnderTest extends Pick<HttpClient, 'request'> {
  app: FastifyInstance;
  deps: Awaited<ReturnType<typeof connectApi>>;
  url: string;
  token(sub: string, role?: 'buyer' | 'merchant' | 'admin'): string;
  close(): Promise<void>;
}

/** A log line of the api, as an operator reads it. */
export type LogLine = { level: number; msg: string; reqId?: string; req?: { url: string } } & Record<string, unknown>;

/** The api's log lines at `info` and above, kept in memory for a test to read. */
export interface CollectedLog {
  lines: LogLine[];
  write(line: string): void;
}

export function collectLog(): CollectedLog {
  const lines: LogLine[] = [];
  return { lines, write: (line) => void lines.push(JSON.parse(line) as LogLine) };
}

/** The api built from its real parts, listening on a free port, against the test file's env; silent unless given a `log`. */
export async function startApi(env: TestEnv, options: { clock?: () => Date; connections?: number; log?: CollectedLog } = {}): Promise<ApiUnderTest> {
  const deps = await connectApi(env.config);
  const app = await buildApp({ ...deps, clock: options.clock ?? deps.clock }, { logger: options.log ? { level: 'info', stream: options.log } : false });
  // as main.ts does: each connection's outages go to the api's log, not to stderr as unhandled errors
  deps.logRedisOutages(app.log);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const http = httpClient(url, options.connections);
  return {
    app,
    deps,
    url,
    request: http.request,
    token: (sub, role = 'buyer') => signToken(env.config.AUTH_JWT_SECRET, { sub, role }),
    async close() {
      await http.close();
      await app.close();
      await deps.close();
    },
  };
}
