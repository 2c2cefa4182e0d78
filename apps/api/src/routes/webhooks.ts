import { randomBytes } from 'node:crypto';
import { addressInside } from '@orders/clients';
import { OrderEventRepository, type WebhookDeliveryRow, type WebhookRow } from '@orders/persistence';
import { orderEventStreamKey } from '@orders/queues';
import type { FastifyInstance } from 'fastify';
import { ulid } from 'ulid';
import type { AppDeps } from '../app-deps.js';
import { HttpProblem, notFound, validationFailed } from '../problems.js';
import { ULID_PATTERN, noFieldsBody, problemRef } from '../schemas.js';

const webhookSchema = {
  type: 'object',
  properties: {
    webhookId: { type: 'string' },
    url: { type: 'string' },
    description: { type: ['string', 'null'] },
    streamCursor: { type: 'string', description: 'the last order-event stream entry this webhook acknowledged' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    deliveryId: { type: 'integer' },
    firstEventId: { type: 'string' },
    lastEventId: { type: 'string' },
    eventCount: { type: 'integer' },
    attempt: { type: 'integer' },
    outcome: { type: 'string', enum: ['delivered', 'failed'] },
    statusCode: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    durationMs: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
  },
} as const;

const webhookParams = { type: 'object', required: ['webhookId'], properties: { webhookId: { type: 'string', pattern: ULID_PATTERN } } } as const;

const webhookView = (row: WebhookRow) => ({ webhookId: row.webhook_id, url: row.url, description: row.description, streamCursor: row.stream_cursor, createdAt: row.created_at.toISOString() });
const deliveryView = (row: WebhookDeliveryRow) => ({
  deliveryId: row.delivery_id,
  firstEventId: String(row.first_event_id),
  lastEventId: String(row.last_event_id),
  eventCount: row.event_count,
  attempt: row.attempt,
  outcome: row.outcome,
  statusCode: row.status_code,
  error: row.error,
  durationMs: row.duration_ms,
  at: row.at.toISOString(),
});

/**
 * Webhooks for downstream systems (membership points, analytics, a CRM): an admin
 * registers a URL and receives every order event from then on, in order per order, as
 * signed batches (`x-signature: sha256=<hmac of the body>` with the secret returned once,
 * at registration). Delivery is at least once: receivers drop repeats by eventId.
 */
export async function webhookRoutes(app: FastifyInstance, { deps }: { deps: AppDeps }) {
  const events = new OrderEventRepository(deps.db);
  const streamKey = orderEventStreamKey(deps.config.REDIS_KEY_PREFIX);

  app.post<{ Body: { url: string; description?: string } }>(
    '/v1/admin/webhooks',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['admin'],
        summary: 'Register a webhook for order events; the response carries its signing secret, shown only here',
        description:
          "400 VALIDATION_FAILED for a URL no delivery could reach (its host or port, credentials in it), one naming no host (http:///orders, which fetch reads as the host orders) and, where WEBHOOK_PRIVATE_RECEIVERS is false (production), for a host that is or resolves to an address of the shop's own networks (loopback, private, link-local) or to none.",
        body: {
          type: 'object',
          required: ['url'],
          additionalProperties: false,
          properties: {
            url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2048 },
            description: { type: 'string', maxLength: 500 },
          },
        },
        response: { 201: { type: 'object', properties: { ...webhookSchema.properties, secret: { type: 'string' } } }, '4xx': problemRef, '5xx': problemRef },
      },
    },
    async (request, reply) => {
      // the uri format takes some URLs fetch cannot parse (port 99999, host 256.1.1.1): every delivery would fail
      if (!URL.canParse(request.body.url)) throw validationFailed('body/url: not a URL a delivery could be sent to (its host or port is not one)');
      // the URL parser skips the slashes of a missing host (http:///orders is http://orders/): the signed events would go to a host the admin never named
      if (/^https?:\/\/\//.test(request.body.url)) throw validationFailed('body/url: names no host between // and its path (a third /): a delivery would go to the host its path begins with');
      // fetch refuses a URL with credentials: every delivery would fail, and listings would show them
      const { username, password, port } = new URL(request.body.url);
      if (port === '0') throw validationFailed('body/url: port 0 is no port a delivery could be sent to');
      const { hostname } = new URL(request.body.url);
      // DNS names end at 253 characters, 63 a label: a longer host no lookup answers, nor a retry
      if (hostname.length > 253 || hostname.split('.').some((label) => label.length > 63)) throw validationFailed('body/url: its host is longer than a DNS name can be (253 characters, 63 between dots)');
      if (username || password) throw validationFailed('body/url: a webhook URL carries no credentials (user:pass@); the receiver checks the signature made with the secret this answer gives');
      // the workers would POST to the shop's own hosts (its MySQL, Redis, metadata service): a stolen admin token's way in
      if (!deps.config.WEBHOOK_PRIVATE_RECEIVERS) await refuseReceiverInside(new URL(request.body.url).hostname);
      // events from now on: the cursor starts at the stream's newest entry
      const newest = await deps.redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
      const row = {
        webhook_id: ulid(),
        url: request.body.url,
        secret: randomBytes(32).toString('hex'),
        description: request.body.description ?? null,
        stream_cursor: newest[0]?.[0] ?? '0-0',
        created_at: deps.clock(),
      };
      await events.createWebhook(row);
      return reply.code(201).header('location', `/v1/admin/webhooks/${row.webhook_id}`).send({ ...webhookView(row), secret: row.secret });
    },
  );

  app.get(
    '/v1/admin/webhooks',
    {
      onRequest: app.requireRole('admin'),
      schema: { tags: ['admin'], summary: 'The registered webhooks', response: { 200: { type: 'object', properties: { items: { type: 'array', items: webhookSchema } } }, '4xx': problemRef } },
    },
    async () => ({ items: (await events.webhooks()).map(webhookView) }),
  );

  app.delete<{ Params: { webhookId: string } }>(
    '/v1/admin/webhooks/:webhookId',
    {
      onRequest: app.requireRole('admin'),
      schema: { tags: ['admin'], summary: 'Stop delivering to a webhook (its delivery log stays)', params: webhookParams, body: noFieldsBody, response: { 204: { type: 'null', description: 'stopped' }, '4xx': problemRef } },
    },
    async (request, reply) => {
      if (!(await events.removeWebhook(request.params.webhookId))) throw notFound('webhook');
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { webhookId: string }; Querystring: { limit: number; before?: number } }>(
    '/v1/admin/webhooks/:webhookId/deliveries',
    {
      onRequest: app.requireRole('admin'),
      schema: {
        tags: ['admin'],
        summary: "A webhook's delivery log, newest first: every attempt with its outcome (kept WEBHOOK_DELIVERIES_KEPT_MS, 30 days by default)",
        params: webhookParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 }, before: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'a deliveryId: the page of older attempts' } },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: deliverySchema }, nextBefore: { type: ['integer', 'null'] } } }, '4xx': problemRef },
      },
    },
    async (request) => {
      const { webhookId } = request.params;
      const rows = await events.deliveries(webhookId, request.query.limit, request.query.before);
      // a webhook removed keeps its log (DELETE): unknown is an id with neither, whatever page was asked for
      const known = async () => (await events.findWebhook(webhookId)) !== undefined || (request.query.before !== undefined && (await events.deliveries(webhookId, 1)).length > 0);
      if (rows.length === 0 && !(await known())) throw notFound('webhook');
      return { items: rows.map(deliveryView), nextBefore: rows.length === request.query.limit ? rows.at(-1)!.delivery_id : null };
    },
  );
}

/** 400 for a receiver whose host is, or resolves to, an address of the shop's own networks, or to nothing. */
async function refuseReceiverInside(host: string): Promise<void> {
  let inside: string | null;
  try {
    inside = await addressInside(host);
  } catch (error) {
    // the name has no address; anything else is DNS not answering now, which a retry may find
    if (['ENOTFOUND', 'ENODATA'].includes((error as { code?: string }).code ?? '')) throw validationFailed(`body/url: its host ${host} resolves to no address a delivery could be sent to`);
    throw new HttpProblem(503, 'SERVICE_UNAVAILABLE', `The address of ${host} could not be looked up now (${(error as Error).message}); retry shortly`, 5);
  }
  if (inside !== null) {
    throw validationFailed(`body/url: its host ${host} is ${inside}, an address of the shop's own networks (loopback, private, link-local): webhooks go to receivers outside them unless WEBHOOK_PRIVATE_RECEIVERS=true`);
  }
}
