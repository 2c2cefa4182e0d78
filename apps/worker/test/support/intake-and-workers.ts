import { createTestEnv, startApiProcess, type ApiProcess, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, type RunningWorkers } from '@orders/worker';
import { pino } from 'pino';

export interface IntakeAndWorkers {
  env: TestEnv;
  /** the api as its own process, as production runs it */
  http: ApiProcess;
  /** every queue's workers in the test's process, so a test reads their queues and metrics */
  workers: RunningWorkers;
  close(): Promise<void>;
}

/** An api process and the workers, on a database, key prefix and queue prefix of the test file's own. */
export async function startIntakeAndWorkers(name: string, overrides: Record<string, string>): Promise<IntakeAndWorkers> {
  const env = await createTestEnv(name, overrides);
  const http = await startApiProcess(env.env, 10);
  const workers = startWorkers(connectWorker(env.config, pino({ level: 'silent' })));
  return {
    env,
    http,
    workers,
    async close() {
      await workers.close();
      await http.close();
      await env.cleanup();
    },
  };
}
