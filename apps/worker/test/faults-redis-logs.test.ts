import { createTestEnv, freePort, startApiProcess, spawnApp, startTcpProxy, waitFor, type ApiProcess, type SpawnedProcess, type TcpProxy, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface LogLine {
  level: number;
  msg: string;
  connection?: string;
  errorsWhileAway?: number;
}

/** What a log pipeline makes of a process's output: JSON lines, and the lines it cannot parse. */
function readLog(output: string): { lines: LogLine[]; unparsed: string[] } {
  const lines: LogLine[] = [];
  const unparsed: string[] = [];
  for (const line of output.split('\n').filter((text) => text.trim() !== '')) {
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      unparsed.push(line);
    }
  }
  return { lines, unparsed };
}

const said = (output: string, message: string) => readLog(output).lines.filter((line) => line.msg === message);
/** Every connection that said it lost Redis has said it is back (each connection's ready event comes in its own time). */
const allBack = (output: string) => {
  const back = new Set(said(output, 'Redis connection back').map((line) => line.connection));
  return said(output, 'Redis connection lost: reconnecting').every((line) => back.has(line.connection));
};

describe('the api and a worker while Redis is away (a TCP proxy that resets and refuses connections)', () => {
  let proxy: TcpProxy;
  let env: TestEnv;
  let api: ApiProcess;
  let worker: SpawnedProcess;

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: '127.0.0.1', port: 6379 });
    env = await createTestEnv('faults_redis_logs', { LOG_LEVEL: 'info' });
    const throughProxy = { ...env.env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` };
    api = await startApiProcess(throughProxy);
    worker = spawnApp('worker', { ...throughProxy, WORKER_METRICS_PORT: String(await freePort()) });
    await waitFor(async () => said(worker.output(), 'worker started').length > 0, { what: 'the worker to start', timeoutMs: 45_000, explain: async () => worker.output().slice(-500) });
  });

  afterAll(async () => {
    await api?.close();
    await worker?.stop();
    await proxy?.close();
    await env?.cleanup();
  });

  it('each log one JSON line per connection when it goes and one when it is back, not a line per reconnect attempt', { timeout: 60_000 }, async () => {
    const apiBefore = api.process.output().length;
    const workerBefore = worker.output().length;
    await proxy.cut();
    // several reconnect attempts of every connection: ioredis retries within 50 ms, then every 2 s at most
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await proxy.restore();
    await waitFor(
      async () => {
        const [apiSaid, workerSaid] = [api.process.output().slice(apiBefore), worker.output().slice(workerBefore)];
        return said(apiSaid, 'Redis connection back').length >= 2 && said(workerSaid, 'Redis connection back').length >= 1 && allBack(apiSaid) && allBack(workerSaid);
      },
      {
      what: 'the api and the worker to say Redis is back',
      timeoutMs: 20_000,
        explain: async () => `api: ${api.process.output().slice(apiBefore).slice(-1500)}\nworker: ${worker.output().slice(workerBefore).slice(-1500)}`,
      },
    );

    for (const output of [api.process.output().slice(apiBefore), worker.output().slice(workerBefore)]) {
      expect(readLog(output).unparsed).toEqual([]);
      const lost = said(output, 'Redis connection lost: reconnecting');
      const back = said(output, 'Redis connection back');
      // what the process said, in order, for the failure message
      const story = readLog(output).lines.filter((line) => line.connection !== undefined).map((line) => `${line.connection}: ${line.msg}`).join('; ');
      expect(lost.length).toBeGreaterThan(0);
      // one of each per connection, however many attempts the outage took
      expect(new Set(lost.map((line) => line.connection)).size, story).toBe(lost.length);
      expect(back.map((line) => line.connection).sort(), story).toEqual(lost.map((line) => line.connection).sort());
      expect(back.some((line) => (line.errorsWhileAway ?? 0) > 0)).toBe(true);
      expect(readLog(output).lines.filter((line) => line.level >= 50)).toEqual([]);
    }
    expect((await api.request('GET', '/health/ready')).status).toBe(200);
  });
});

describe('the api started while Redis is away', () => {
  it('exits 1 with one line that says Redis is not reachable and why', { timeout: 30_000 }, async () => {
    const env = await createTestEnv('faults_redis_logs_start');
    try {
      const api = spawnApp('api', { ...env.env, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PORT: String(await freePort()) });
      expect(api.child.exitCode ?? (await new Promise((resolve) => api.child.once('exit', resolve)))).toBe(1);
      expect(api.output().trim()).toMatch(/^api could not start: Redis is not reachable \(connect ECONNREFUSED 127\.0\.0\.1:\d+\): start it, or set REDIS_URL/);
      expect(api.output().trim().split('\n')).toHaveLength(1);
    } finally {
      await env.cleanup();
    }
  });
});
