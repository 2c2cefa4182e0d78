import { DomainError } from '@orders/domain';
import { StatementTooSlow, isDatabaseUnavailable, isTransientRefusal } from '@orders/persistence';
import { isRedisUnavailable } from '@orders/stock';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CheckoutIntake } from '../checkout-intake.js';
import { HttpProblem, STATUS_OF_CODE, bodySize, dependencyTooSlow, dependencyUnavailable, problem, problemMembersOf, type ProblemMembers } from '../problems.js';

const FASTIFY_CODES: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'VALIDATION_FAILED' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'VALIDATION_FAILED' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'VALIDATION_FAILED' },
};

function send(reply: FastifyReply, status: number, code: string, detail: string, retryAfterSeconds?: number, members?: ProblemMembers) {
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(status).type('application/problem+json').send(problem(status, code, detail, reply.request.url, members));
}

/** What Node's HTTP parser refuses before Fastify sees a request, by its error code. */
const CLIENT_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'REQUEST_TIMEOUT', detail: 'The request did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'HEADERS_TOO_LARGE', detail: 'The request headers are larger than the api accepts' },
};

/**
 * Fastify's `clientErrorHandler`: a request the HTTP parser refused (a header with characters
 * HTTP does not allow, headers past the size limit, one that took too long) gets problem
 * details like any other error, instead of Fastify's own JSON, and the connection is closed.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // a reset connection has no one left to answer
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, code, detail } = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, code: 'BAD_REQUEST', detail: 'The request is not valid HTTP' };
  const body = JSON.stringify(problem(status, code, detail));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}

/**
 * The server's `checkExpectation` listener: a request whose `Expect` is not 100-continue (the
 * only expectation HTTP/1.1 defines) is refused 417 in problem details, instead of Node's bare
 * 417, and the connection is closed, its body unread.
 */
export function answerUnmetExpectation(request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(problem(417, 'EXPECTATION_FAILED', `Expect: ${request.headers.expect ?? ''} is not supported (only 100-continue)`, request.url));
  response.writeHead(417, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
}

/** What Fastify's router refuses before any route or hook sees a request, by its error code. */
const ROUTER_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_BAD_URL: { status: 400, code: 'VALIDATION_FAILED', detail: 'The path holds a percent escape that is not valid UTF-8' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'URI_TOO_LONG', detail: 'A path segment is longer than the api accepts (100 characters)' },
};

/**
 * Fastify's `frameworkErrors`: a path its router refuses (a broken percent escape, a path
 * parameter past maxParamLength) gets problem details like any other error, instead of
 * Fastify's own JSON.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const { status, code, detail } = ROUTER_ERRORS[error.code] ?? { status: error.statusCode ?? 400, code: 'BAD_REQUEST', detail: error.message };
  void send(reply, status, code, detail);
}

/**
 * An outage, not a bug: the caller is told to come back shortly, the log says which store was
 * away, too slow or busy. A slow statement is logged by its kind alone, not by its text, which
 * may carry a buyer's data written into it. Busy: MySQL refused a transaction for now (a
 * deadlock, a lock wait timeout), past retryTransaction's attempts where the write has them;
 * the transaction was rolled back whole, so the same request may come again.
 */
function outageOf(error: unknown, log: FastifyBaseLogger): HttpProblem | null {
  if (error instanceof StatementTooSlow) {
    log.warn({ statement: error.statementKind, timeoutMs: error.timeoutMs }, 'The order store (MySQL) answered too slowly: statement ended after MYSQL_QUERY_TIMEOUT_MS');
    return dependencyTooSlow('The order store (MySQL)');
  }
  if (isTransientRefusal(error)) {
    log.warn({ err: error }, 'The order store (MySQL) refused a transaction for now (deadlock or lock wait timeout)');
    return new HttpProblem(503, 'DATABASE_BUSY', 'The order store (MySQL) is busy with other changes to the same rows; retry shortly', 1);
  }
  const away = isDatabaseUnavailable(error) ? 'The order store (MySQL)' : isRedisUnavailable(error) ? 'Stock (Redis)' : null;
  if (!away) return null;
  log.warn({ err: error }, `${away} unavailable`);
  return dependencyUnavailable(away);
}

export interface ProblemDetailsOptions {
  /** The checkout intake, told how a checkout it refused before its budget was counted is answered, so its outcome follows the answer. */
  checkouts?: Pick<CheckoutIntake, 'answered'>;
}

/**
 * One error handler for the whole api: every error becomes RFC 9457 problem details
 * with a stable `code`; 5xx answers never show internals, the log does.
 */
export const problemDetailsPlugin = fp(
  async (app: FastifyInstance, options: ProblemDetailsOptions) => {
    app.setErrorHandler(async (thrown: FastifyError | Error, request, reply) => {
      // a checkout refused before its reservation counted the buyer's budget, or a callback not signed: counted now, and over it the answer is 429
      const overBudget = await app.budgetRefusalOf(request, thrown);
      if (request.checkoutCounters) options.checkouts?.answered(request.checkoutCounters, overBudget !== null);
      const refused = overBudget ?? thrown;
      const error = outageOf(refused, request.log) ?? refused;
      if (error instanceof HttpProblem) {
        return send(reply, error.statusCode, error.code, error.message, error.retryAfterSeconds);
      }
      if (error instanceof DomainError) {
        return send(reply, STATUS_OF_CODE[error.code] ?? 409, error.code, error.message, undefined, problemMembersOf(error));
      }
      const fastifyError = error as FastifyError;
      if (fastifyError.validation) {
        // ajv's "must NOT have additional properties" does not say which: the caller needs the name
        const unknown = fastifyError.validation.flatMap((issue) => (typeof issue.params.additionalProperty === 'string' ? [issue.params.additionalProperty] : []));
        const named = unknown.length > 0 ? ` (${unknown.join(', ')})` : '';
        return send(reply, 400, 'VALIDATION_FAILED', `${fastifyError.validationContext ?? 'request'}${error.message.replace(/^(body|querystring|params|headers)/, '')}${named}`);
      }
      const known = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
      // the caller is told the limit of the route it sent to, to split what it sends
      if (known && fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return send(reply, known.status, known.code, `Request body is too large: this route accepts at most ${bodySize(request.routeOptions.bodyLimit)}`);
      if (known) return send(reply, known.status, known.code, error.message);
      const status = fastifyError.statusCode ?? 500;
      if (status >= 400 && status < 500) return send(reply, status, status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', error.message);
      request.log.error({ err: error }, 'unhandled error');
      return send(reply, 500, 'INTERNAL', 'Something went wrong on our side; the request can be retried (a checkout with the same Idempotency-Key)');
    });
    // rate limited like any route (the budget's hook runs at the root), so ids and paths cannot be probed at will
    app.setNotFoundHandler((request, reply) => send(reply, 404, 'NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`));
  },
  { name: 'problem-details', dependencies: ['rate-limit'] },
);
