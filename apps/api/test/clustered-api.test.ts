import { appEntry } from '@orders/config';
import { QUEUE } from '@orders/queues';
import { buyerAddress, childProcessesOf, createSku, createTestEnv, signToken, startApiProcess, waitFor, type ApiProcess, type TestEnv } from '@orders/testing';
import { Queue } from 'bullmq';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHECKOUTS = 40;

/** One request on a connection of its own: node:cluster hands each new connection to the next process. */
function onNewConnection(url: string, method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sent = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      `${url}${path}`,
      {
        method,
        agent: false,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(sent ? { 'content-type': 'application/json' } : {}), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(sent);
  });
}

/** The value of one series in the text exposition format; undefined when it is not there. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([key, value]) => l.includes(`${key}="${value}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The api processes the primary forked (by their script: not a helper a child may start). */
function apiProcessesOf(pid: number): number[] {
  return childProcessesOf(pid).filter((child) => readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(appEntry('api')));
}

describe('the api as two processes on one port (API_PROCESSES=2)', () => {
  let env: TestEnv;
  let api: ApiProcess;
  let orders: Queue;

  beforeAll(async () => {
    env = await createTestEnv('clustered_api');
    // on SIGTERM each process answers readiness 503 for 1.5 s before it closes: longer than a crashed one's restart takes (1 s)
    api = await startApiProcess({ ...env.env, API_PROCESSES: '2', SHUTDOWN_DRAIN_DELAY_MS: '1500' }, 10);
    orders = new Queue(QUEUE.orders, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    await createSku(api, signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' }), {
      skuId: 'LAMP', title: 'Lamp', priceCents: 2_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 100, deduction: 'placement',
    });
  });

  afterAll(async () => {
    await orders?.close();
    await api?.close();
    await env?.cleanup();
  });

  it('serves checkouts from both processes, and every scrape of /metrics counts the whole instance', { timeout: 60_000 }, async () => {
    expect(apiProcessesOf(api.process.child.pid!)).toHaveLength(2);
    const answers = await Promise.all(
      Array.from({ length: CHECKOUTS }, (_, i) =>
        onNewConnection(api.url, 'POST', '/v1/orders', signToken(env.config.AUTH_JWT_SECRET, { sub: `buyer-${i}`, role: 'buyer' }), { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress }, { 'idempotency-key': `lamp-${i}` }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(CHECKOUTS).fill(202));
    // a timer due now, which only a worker serving the timers queue would move on
    const timers = new Queue(QUEUE.timers, { connection: env.redis, prefix: env.config.QUEUE_PREFIX });
    await timers.add('expireOrder', { orderId: 'due-now' }, { delay: 1 });
    await timers.close();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    // no worker runs: every accepted order still waits in the queue, in one or more jobs
    const waitingJobs = (await orders.getJobCounts('waiting')).waiting ?? 0;
    expect(waitingJobs).toBeGreaterThan(0);

    // fresh connections, so the scrapes reach both processes
    for (let scrape = 0; scrape < 6; scrape++) {
      const metrics = await onNewConnection(api.url, 'GET', '/metrics');
      // a refused scrape says why: the primary's gathering or an api process's answer
      expect(metrics.status, metrics.text).toBe(200);
      expect(sample(metrics.text, 'checkouts_total', { outcome: 'accepted' })).toBe(CHECKOUTS);
      expect(sample(metrics.text, 'http_request_duration_seconds_count', { method: 'POST', route: '/v1/orders', status_code: '202' })).toBe(CHECKOUTS);
      // every process samples the same queue: the instance reports it once, not once per process
      expect(sample(metrics.text, 'queue_jobs', { queue: QUEUE.orders, state: 'waiting' })).toBe(waitingJobs);
      // and how long its oldest job has waited, which grows on with no worker to export it
      expect(sample(metrics.text, 'queue_oldest_waiting_job_age_seconds', { queue: QUEUE.orders })).toBeGreaterThan(0);
      expect(sample(metrics.text, 'queue_oldest_waiting_job_age_seconds', { queue: QUEUE.payments })).toBe(0);
      // and how long the due timer is past due, which grows on while no worker serves its queue
      expect(sample(metrics.text, 'queue_overdue_delayed_job_seconds', { queue: QUEUE.timers })).toBeGreaterThan(1);
      expect(sample(metrics.text, 'queue_overdue_delayed_job_seconds', { queue: QUEUE.orders })).toBe(0);
    }
    // as the console's queue table reads it
    const queues = await onNewConnection(api.url, 'GET', '/v1/admin/queues', signToken(env.config.AUTH_JWT_SECRET, { sub: 'ops', role: 'admin' }));
    const listedQueues = (JSON.parse(queues.text) as { queues: Array<{ name: string; waiting: number; delayed: number; oldestWaitingSeconds: number; overdueDelayedSeconds: number }> }).queues;
    const listed = listedQueues.find((queue) => queue.name === QUEUE.orders);
    expect(listed?.waiting).toBe(waitingJobs);
    expect(listed?.oldestWaitingSeconds).toBeGreaterThan(0);
    const timersListed = listedQueues.find((queue) => queue.name === QUEUE.timers);
    expect([timersListed?.delayed, timersListed!.overdueDelayedSeconds > 1]).toEqual([1, true]);
  });

  it("keeps counting the checkouts of a process that crashed and was started again: the instance's counters never go back", { timeout: 60_000 }, async () => {
    const before = apiProcessesOf(api.process.child.pid!);
    const primaryStartedAt = sample((await onNewConnection(api.url, 'GET', '/metrics')).text, 'process_start_time_seconds', { app: 'api' });
    expect(primaryStartedAt).toBeGreaterThan(0);
    const counted = async () => {
      const metrics = await onNewConnection(api.url, 'GET', '/metrics');
      expect(metrics.status, metrics.text).toBe(200);
      return sample(metrics.text, 'checkouts_total', { outcome: 'accepted' });
    };
    // each process has answered a scrape since its checkouts: the primary holds what each counted
    expect(await counted()).toBe(CHECKOUTS);
    process.kill(before[0]!, 'SIGKILL');
    await waitFor(async () => {
      const now = apiProcessesOf(api.process.child.pid!);
      return now.length === 2 && !now.includes(before[0]!);
    }, { what: 'the crashed process started again', timeoutMs: 20_000 });
    // scrapes reaching either process, the new one among them: the crashed one's checkouts are still counted
    for (let scrape = 0; scrape < 6; scrape++) expect(await counted()).toBe(CHECKOUTS);
    // the primary says it started one again (ProcessRestarting), and the instance's start is the primary's, which did not move
    const scraped = (await onNewConnection(api.url, 'GET', '/metrics')).text;
    expect(sample(scraped, 'api_process_restarts_total', { app: 'api' })).toBe(1);
    expect(scraped.split('\n').filter((line) => line.startsWith('process_start_time_seconds{'))).toEqual([`process_start_time_seconds{app="api"} ${primaryStartedAt}`]);
    // and so are the new process's own
    const more = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        onNewConnection(api.url, 'POST', '/v1/orders', signToken(env.config.AUTH_JWT_SECRET, { sub: `later-buyer-${i}`, role: 'buyer' }), { items: [{ skuId: 'LAMP', qty: 1 }], address: buyerAddress }, { 'idempotency-key': `later-lamp-${i}` }),
      ),
    );
    expect(more.map((a) => a.status)).toEqual([202, 202, 202, 202]);
    expect(await counted()).toBe(CHECKOUTS + 4);
  });

  it('stops both processes on SIGTERM, and starts none in place of one that crashed just before', { timeout: 30_000 }, async () => {
    const children = apiProcessesOf(api.process.child.pid!);
    process.kill(children[0]!, 'SIGKILL');
    await waitFor(async () => api.process.output().includes(`api process ${children[0]} exited`), { what: 'the crash to be noticed', intervalMs: 10 });
    // its replacement was due a second after the crash, while the other process drains: one started then would never be told to stop
    const signalled = Date.now();
    expect(await api.process.stop()).toBe(0);
    // one started anyway would hold the primary until it kills all at drain + grace + 1 s (12.5 s here) and exits 1;
    // a clean stop takes the 1.5 s drain and the closing, seconds more on a loaded box
    expect(Date.now() - signalled).toBeLessThan(10_000);
    for (const pid of children) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('exits non-zero when a process could not finish its shutdown within SHUTDOWN_GRACE_MS', { timeout: 30_000 }, async () => {
    // its checkouts' request lines logged: the test sees when a process has taken the request in
    const hurried = await startApiProcess({ ...env.env, API_PROCESSES: '2', SHUTDOWN_GRACE_MS: '500', LOG_LEVEL: 'info', LOG_CHECKOUT_REQUESTS: 'true' }, 2);
    // a checkout whose body never finishes arriving: the process that took it cannot drain it within the grace
    const { hostname, port } = new URL(hurried.url);
    const stuck = connect(Number(port), hostname);
    await new Promise((resolve) => stuck.once('connect', resolve));
    stuck.write(`POST /v1/orders HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"items":`);
    stuck.on('error', () => undefined);
    // a connection whose request no process has read yet is idle, and closed at once on SIGTERM
    await waitFor(async () => hurried.process.output().includes('"url":"/v1/orders"'), { what: 'a process to take the stuck checkout in', timeoutMs: 15_000, intervalMs: 20 });
    expect(await hurried.process.stop()).toBe(1);
    stuck.destroy();
    await hurried.close();
  });
});
