import { freePort, httpClient, type HttpClient } from './http-client.js';
import { spawnApp, waitFor, type SpawnedProcess } from './processes.js';

export interface ApiProcess extends HttpClient {
  process: SpawnedProcess;
  url: string;
}

/**
 * The api as its own process on a free port, answering once /health/ready says so. An api that
 * exits first, or is not ready within `readyTimeoutMs`, fails the test with what /health/ready
 * last answered and what the api printed, and leaves none of its processes running. 45 s: the
 * longest files start together at a run's start, while every test process loads the apps and
 * the lint runs, and an api of two processes once loaded for more than 30 s then, on a box whose
 * CPU ran at a third of its speed an hour later (2026-12-06).
 */
export async function startApiProcess(env: Record<string, string>, connections = 100, { readyTimeoutMs = 45_000 } = {}): Promise<ApiProcess> {
  const port = await freePort();
  const process = spawnApp('api', { ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  const http = httpClient(url, connections);
  let lastAnswer = 'nothing yet';
  const exited = () => process.child.exitCode !== null || process.child.signalCode !== null;
  try {
    await waitFor(
      async () => {
        const ready = await http.request('GET', '/health/ready').then(
          ({ status, body }) => ((lastAnswer = `${status} ${JSON.stringify(body)}`), status === 200),
          (error: Error) => ((lastAnswer = `no answer (${error.message})`), false),
        );
        if (!ready && exited()) throw new Error(`The api exited (${process.child.exitCode ?? process.child.signalCode}) before it was ready`);
        return ready;
      },
      { what: 'the api to be ready', timeoutMs: readyTimeoutMs },
    );
  } catch (error) {
    await process.killAll();
    await http.close();
    throw new Error(`${(error as Error).message}\n/health/ready last answered: ${lastAnswer}\nthe api's output:\n${process.output().slice(-2000)}`, { cause: error });
  }
  return {
    ...http,
    process,
    url,
    async close() {
      await http.close();
      await process.stop();
    },
  };
}
