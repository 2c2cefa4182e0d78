import { freePort, httpClient, type HttpClient } from './http-client.js';
import { spawnApp, waitFor, type SpawnedProcess } from './processes.js';

export interface ApiProcess extends HttpClient {
  process: SpawnedProcess;
  url: string;
}

/** The api as its own process on a free port, answering once /health/ready says so. */
export async function startApiProcess(env: Record<string, string>, connections = 100): Promise<ApiProcess> {
  const port = await freePort();
  const process = spawnApp('api', { ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  const http = httpClient(url, connections);
  await waitFor(async () => (await http.request('GET', '/health/ready').catch(() => ({ status: 0 }))).status === 200, {
    what: 'the api to be ready',
    timeoutMs: 30_000,
    explain: async () => `its output: ${process.output().slice(-500)}`,
  });
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
