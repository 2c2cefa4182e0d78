import { IllegalTransition, SaleAlreadyOpen, SaleNotActive, type Actor, type DomainError } from '@orders/domain';

/** Errors of the HTTP layer itself (auth, lookups, load); domain errors come from @orders/domain. */
export class HttpProblem extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'HttpProblem';
  }
}

export const notFound = (what = 'resource') => new HttpProblem(404, 'NOT_FOUND', `No such ${what}`);
export const unauthorized = (detail: string) => new HttpProblem(401, 'UNAUTHORIZED', detail);
export const forbidden = (detail: string) => new HttpProblem(403, 'FORBIDDEN', detail);
export const validationFailed = (detail: string) => new HttpProblem(400, 'VALIDATION_FAILED', detail);
export const overloaded = (retryAfterSeconds: number) =>
  new HttpProblem(503, 'OVERLOADED', 'The order queue is past its high-water mark; retry shortly', retryAfterSeconds);
/** The request budget is spent for the `msLeft` ms its window still runs. */
export const rateLimited = (msLeft: number) => {
  const retryAfterSeconds = Math.max(1, Math.ceil(msLeft / 1000));
  return new HttpProblem(429, 'RATE_LIMITED', `Too many requests; retry in ${retryAfterSeconds} s`, retryAfterSeconds);
};
/**
 * An action on an order the intake accepted that is not in MySQL yet: the state machine's
 * refusal (ACCEPTED allows no action by anyone), with a retry-after, since in a moment it will.
 */
export const stillInQueue = (action: string, actor: Actor) =>
  new HttpProblem(409, 'ILLEGAL_TRANSITION', `Action '${action}' by ${actor} is not allowed while the order is ACCEPTED (still in the queue); retry once it is PENDING_PAYMENT`, 1);
export const dependencyUnavailable = (dependency: string) =>
  new HttpProblem(503, 'SERVICE_UNAVAILABLE', `${dependency} is unavailable; retry shortly`, 1);
/**
 * A checkout under the same Idempotency-Key and body is still under way, nothing accepted under
 * the key yet: retried with the key, the request gets that checkout's order, or is taken on its
 * own merits once that one was refused.
 */
export const checkoutInProgress = () =>
  new HttpProblem(503, 'CHECKOUT_IN_PROGRESS', 'A checkout with this Idempotency-Key is still in progress; retry shortly with the same key', 1);
/** A store that answers, but past its deadline (MYSQL_QUERY_TIMEOUT_MS): as transient for the caller as one that is away. */
export const dependencyTooSlow = (dependency: string) =>
  new HttpProblem(503, 'SERVICE_UNAVAILABLE', `${dependency} is answering too slowly; retry shortly`, 1);

/** A body size limit as a caller reads it, to split what it sends: its bytes, and its KiB or MiB when whole. */
export function bodySize(bytes: number): string {
  const [kibibytes, mebibytes] = [bytes / 1024, bytes / (1024 * 1024)];
  const named = Number.isInteger(mebibytes) ? ` (${mebibytes} MiB)` : Number.isInteger(kibibytes) ? ` (${kibibytes} KiB)` : '';
  return `${bytes} bytes${named}`;
}

/** HTTP status of each domain error code; the one place where the two vocabularies meet. */
export const STATUS_OF_CODE: Record<string, number> = {
  VALIDATION_FAILED: 400,
  OUT_OF_STOCK: 409,
  ILLEGAL_TRANSITION: 409,
  CONFLICT: 409,
  SKU_EXISTS: 409,
  LIMIT_EXCEEDED: 422,
  SALE_NOT_ACTIVE: 422,
  SALE_ALREADY_OPEN: 409,
  SALE_END_TOO_CLOSE: 409,
  UNKNOWN_SKU: 422,
  IDEMPOTENCY_CONFLICT: 422,
  ORDER_TYPE_MISMATCH: 422,
  RISK_REJECTED: 403,
  REFUND_EXCEEDS_ORDER: 422,
  REFUND_NOT_FAILED: 409,
  PAYMENT_NOT_GIVEN_UP: 409,
  COUPON_INVALID: 422,
  COUPON_LIMIT_EXCEEDED: 422,
  BUCKETED_SKU_SOLD_ALONE: 422,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  /** the child of a split order whose status refused an action on the whole order */
  childOrderId?: string;
  /** when the flash sale of a SKU refused before it opens does (SALE_NOT_ACTIVE), or when the sale a change was refused for opened (SALE_ALREADY_OPEN) */
  opensAt?: string;
  /** when the flash sale a change was refused for (SALE_ALREADY_OPEN) is over for good, and a new sale may replace it */
  changeableAt?: string;
}

/** RFC 9457 extension members: what a refusal says beside its detail, for a client to read without parsing it. */
export type ProblemMembers = Pick<ProblemDetails, 'childOrderId' | 'opensAt' | 'changeableAt'>;

/** The extension members of a domain error's answer: the child of a split order that refused, when one did; when a sale not open yet opens, or a sale too late to change opened. */
export function problemMembersOf(error: DomainError): ProblemMembers {
  if (error instanceof IllegalTransition && error.childOrderId !== undefined) return { childOrderId: error.childOrderId };
  if (error instanceof SaleNotActive && error.opensAt !== undefined) return { opensAt: error.opensAt.toISOString() };
  if (error instanceof SaleAlreadyOpen) return { opensAt: error.opensAt.toISOString(), ...(error.changeableAt && { changeableAt: error.changeableAt.toISOString() }) };
  return {};
}

export function problem(status: number, code: string, detail: string, instance?: string, members: ProblemMembers = {}): ProblemDetails {
  return {
    type: `urn:order-system:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(instance ? { instance } : {}),
    ...members,
  };
}
