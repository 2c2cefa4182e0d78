import autocannon from 'autocannon';

export interface LoadResult {
  reqPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  requests: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationS: number;
}

export interface RequestShape {
  method: 'POST' | 'GET';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Called once per request (autocannon setupRequest): returns the headers/body (and path, when it changes) to send. */
  next?: () => { headers: Record<string, string>; body?: string; path?: string };
  onResponse?: (status: number, body: string) => void;
}

export interface LoadOptions {
  port: number;
  connections: number;
  durationS?: number;
  /** Stop after this many requests (the bounded end-to-end sale); durationS still caps it. */
  amount?: number;
  /** Requests a second in all (autocannon overallRate): a rate below what the box takes, to read what each costs. */
  ratePerSec?: number;
  request: RequestShape;
  timeoutS?: number;
}

/** Drives one autocannon run against 127.0.0.1 from this process. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { request } = options;
  const started = Date.now();
  const settings: autocannon.Options = {
    url: `http://127.0.0.1:${options.port}`,
    connections: options.connections,
    pipelining: 1,
    timeout: options.timeoutS ?? 10,
    ...(options.ratePerSec ? { overallRate: options.ratePerSec } : {}),
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    requests: [
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        ...(request.next
          ? {
              setupRequest: (req: Record<string, unknown>) => {
                const next = request.next!();
                req.headers = next.headers;
                req.body = next.body;
                if (next.path) req.path = next.path;
                return req;
              },
            }
          : {}),
        ...(request.onResponse ? { onResponse: (status: number, body: string) => request.onResponse!(status, body) } : {}),
      } as autocannon.Request,
    ],
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(settings, (error, finished) => (error ? reject(error) : resolve(finished)));
    // autocannon lets `amount` override `duration`: a run bounded by both is stopped here
    if (options.amount && options.durationS) {
      const cap = setTimeout(() => instance.stop(), options.durationS * 1000);
      instance.once('done', () => clearTimeout(cap));
    }
  });
  const statusCodes: Record<string, number> = {};
  const stats = (result as unknown as { statusCodeStats?: Record<string, { count: number }> }).statusCodeStats ?? {};
  for (const [code, { count }] of Object.entries(stats)) statusCodes[code] = count;
  const latency = result.latency as unknown as Record<string, number>;
  return {
    reqPerSec: Math.round(result.requests.average),
    p50: latency.p50 ?? 0,
    p99: latency.p99 ?? 0,
    p999: latency.p99_9 ?? 0,
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    durationS: (Date.now() - started) / 1000,
  };
}
