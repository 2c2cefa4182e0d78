import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { deliverCallback } from './signed-callback.js';

/** The faults every simulator injects; changeable at run time through PUT /__admin/faults. */
export interface CommonFaults {
  latencyMs: number;
  /** share of requests answered 500 */
  failureRate: number;
  /** share of requests never answered (the caller's timeout fires) */
  timeoutRate: number;
  /** every request answered 503 */
  outage: boolean;
}

export interface SimulatorOptions {
  callbackSecret: string;
  callbackAttempts: number;
  callbackRetryMs: number;
  logLevel?: string;
  random?: () => number;
}

export interface Simulator<F extends CommonFaults> {
  app: FastifyInstance;
  faults: F;
  /** Applies the configured faults; false when the request must not be served (it was answered). */
  injectFaults(reply: FastifyReply): Promise<boolean>;
  /** A signed callback, retried until acknowledged; close() waits for it. */
  sendCallback(url: string, payload: unknown): Promise<number>;
  /** Background work (a warehouse's timed events) that close() waits for. */
  track<T>(work: Promise<T>): Promise<T>;
  isClosing(): boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a closing simulator answers the requests under way before it drops their connections. */
const CLOSE_GRACE_MS = 10_000;

/**
 * The part both external-system stand-ins share: a Fastify app whose faults (latency,
 * 500s, requests never answered, outage, plus the simulator's own in `extraFaults`) an
 * operator or a test changes at run time, signed callbacks, and a close that lets go of
 * held requests and waits for callbacks under way.
 */
export function createSimulator<F extends CommonFaults>(initial: F, options: SimulatorOptions, extraFaults: Record<Exclude<keyof F, keyof CommonFaults>, object>): Simulator<F> {
  const faults = { ...initial };
  const random = options.random ?? Math.random;
  const app = Fastify({ logger: { level: options.logLevel ?? 'warn' } });
  const inFlight = new Set<Promise<unknown>>();
  const hangs = new Set<() => void>();
  let closing = false;
  const callbackSettings = {
    secret: options.callbackSecret,
    attempts: options.callbackAttempts,
    retryMs: options.callbackRetryMs,
    log: (message: string) => app.log.warn(message),
    stopped: () => closing,
  };

  async function injectFaults(reply: FastifyReply): Promise<boolean> {
    if (faults.outage) {
      reply.code(503).send({ error: 'outage' });
      return false;
    }
    if (random() < faults.timeoutRate) {
      // never answer: hold the request until the caller gives up (its timeout closes the connection)
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 120_000);
        hangs.add(() => (clearTimeout(timer), resolve(null)));
        reply.raw.once('close', () => (clearTimeout(timer), resolve(null)));
      });
      reply.code(504).send({ error: 'timeout' });
      return false;
    }
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (random() < faults.failureRate) {
      reply.code(500).send({ error: 'injected failure' });
      return false;
    }
    return true;
  }

  function track<T>(work: Promise<T>): Promise<T> {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
    return work;
  }

  app.get('/__admin/faults', async () => faults);
  app.put<{ Body: Partial<F> }>(
    '/__admin/faults',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            latencyMs: { type: 'integer', minimum: 0 },
            failureRate: { type: 'number', minimum: 0, maximum: 1 },
            timeoutRate: { type: 'number', minimum: 0, maximum: 1 },
            outage: { type: 'boolean' },
            ...extraFaults,
          },
        },
      },
    },
    async (request) => Object.assign(faults, request.body),
  );
  app.get('/health/live', async () => ({ status: 'ok' }));
  // closing: let go of requests held by the timeout fault, or close would wait for them. Node
  // closes idle keep-alive connections once, as the server starts closing: one whose answer was
  // still on its way then stays open until keepAliveTimeout (72 s) and close waits for it, so the
  // idle ones are closed until the server is. Past CLOSE_GRACE_MS every connection is dropped, a
  // request under way included: a stand-in's shutdown must not wait on a connection its caller
  // keeps busy (a test's clean-up once waited over a minute for the payment simulator's).
  let closeIdle: NodeJS.Timeout | undefined;
  let closeAll: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    for (const release of hangs) release();
    closeIdle = setInterval(() => app.server.closeIdleConnections(), 50);
    closeAll = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
  });
  app.addHook('onClose', async () => {
    clearInterval(closeIdle);
    clearTimeout(closeAll);
    closing = true;
    await Promise.allSettled([...inFlight]);
  });
  return { app, faults, injectFaults, track, sendCallback: (url, payload) => track(deliverCallback(url, payload, callbackSettings)), isClosing: () => closing };
}
