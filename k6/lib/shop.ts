/**
 * What every load test needs to talk to the order system as its clients do (API.md):
 * tokens signed like the identity provider's, checkouts with idempotency keys, signed
 * callbacks, and one place that says which statuses a script expects.
 */
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import http, { type RefinedResponse } from 'k6/http';
import { Counter } from 'k6/metrics';

export const BASE_URL = __ENV.BASE_URL ?? 'http://127.0.0.1:3000';
// the development default of config/default.json; compose and real runs pass their own
const AUTH_JWT_SECRET = __ENV.AUTH_JWT_SECRET ?? 'dev-only-jwt-secret-change-me-0123456789';
const WAREHOUSE_CALLBACK_SECRET = __ENV.WAREHOUSE_CALLBACK_SECRET ?? 'dev-only-warehouse-callback-secret';

/**
 * Inside compose, `api` resolves to every replica: round-robin over the addresses spreads
 * the load the way a load balancer would.
 */
export const dnsOverReplicas = { ttl: '1m', select: 'roundRobin', policy: 'preferIPv4' } as const;

export type Role = 'buyer' | 'merchant' | 'admin';

/** An HS256 JWT as API.md describes: sub, role, exp. */
export function token(sub: string, role: Role, ttlSeconds = 3600): string {
  const header = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');
  const claims = encoding.b64encode(JSON.stringify({ sub, role, exp: Math.floor(Date.now() / 1000) + ttlSeconds }), 'rawurl');
  const signature = crypto.hmac('sha256', AUTH_JWT_SECRET, `${header}.${claims}`, 'base64rawurl');
  return `${header}.${claims}.${signature}`;
}

const TOKEN_TTL_S = 3600;
/**
 * The tokens this VU holds, by role and subject. A client keeps its token until it nearly
 * expires, and the api's cache of verified tokens (keyed by the header) works only for one
 * that does: a token minted per request would have every request verified afresh.
 */
const heldTokens = new Map<string, { jwt: string; renewAtMs: number }>();

/** The subject's token, minted again once less than 5 minutes of it are left. */
function heldToken(sub: string, role: Role): string {
  const key = `${role}:${sub}`;
  const held = heldTokens.get(key);
  if (held && Date.now() < held.renewAtMs) return held.jwt;
  const minted = { jwt: token(sub, role, TOKEN_TTL_S), renewAtMs: Date.now() + (TOKEN_TTL_S - 300) * 1000 };
  heldTokens.set(key, minted);
  return minted.jwt;
}

const json = (sub: string, role: Role, extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  authorization: `Bearer ${heldToken(sub, role)}`,
  ...extra,
});

/** Statuses no script should ever see: each one is a bug or an outage, counted by script and route. */
export const unexpectedStatuses = new Counter('unexpected_statuses');

/** Counts the answer as unexpected unless it is one the caller said it expects. */
export function expectStatus(response: RefinedResponse<'text'>, route: string, expected: number[]): boolean {
  if (expected.includes(response.status)) return true;
  unexpectedStatuses.add(1, { route, status: String(response.status) });
  return false;
}

export interface FlashSale {
  priceCents: number;
  startsAt: string;
  endsAt: string;
  perUserLimit: number;
}

/**
 * Creates the run's SKU as an admin (POST /v1/admin/skus). One that exists already (409: an
 * earlier run's, or a real one) is refused rather than reused: its stock, orders and flash
 * sale are not this run's, so the checks would compare against the wrong numbers, and a real
 * SKU's stock would be sold to test buyers.
 */
export function createSku(sku: { skuId: string; stock: number; priceCents: number; deduction: 'placement' | 'payment'; flashSale?: FlashSale }): void {
  const response = http.post(
    `${BASE_URL}/v1/admin/skus`,
    JSON.stringify({
      skuId: sku.skuId,
      title: `Load test ${sku.skuId}`,
      priceCents: sku.priceCents,
      merchantId: 'load-test-shop',
      channel: 'self',
      warehouseId: 'wh-load',
      stock: sku.stock,
      deduction: sku.deduction,
      ...(sku.flashSale ? { flashSale: sku.flashSale } : {}),
    }),
    { headers: json('load-test', 'admin'), tags: { name: 'create-sku' } },
  );
  if (response.status === 409) {
    throw new Error(`SKU ${sku.skuId} exists already: a run needs a SKU of its own; name a new one (HOT_SKU, LIFECYCLE_SKU, SOAK_SKU) or leave the variable unset`);
  }
  if (response.status !== 201) throw new Error(`could not create SKU ${sku.skuId}: ${response.status} ${String(response.body)}`);
}

export interface SkuStock {
  available: number;
  reserved: number;
  sold: number;
}

export function skuStock(skuId: string): SkuStock {
  const response = http.get(`${BASE_URL}/v1/admin/skus/${skuId}`, { headers: json('load-test', 'admin'), tags: { name: 'get-sku' } });
  if (response.status !== 200) throw new Error(`could not read SKU ${skuId}: ${response.status}`);
  return response.json('stock') as unknown as SkuStock;
}

export interface PersistedOrder {
  orderId: string;
  status: string;
  items: Array<{ skuId: string; qty: number }>;
}

/**
 * Every order holding the SKU that MySQL has, as an admin finds them (GET /v1/admin/orders,
 * 100 a page). Leaf orders only: a split order's units are counted once, in its children.
 */
export function persistedOrdersOf(skuId: string): PersistedOrder[] {
  const orders: PersistedOrder[] = [];
  let cursor: string | null = null;
  do {
    const page = http.get(`${BASE_URL}/v1/admin/orders?skuId=${skuId}&leaf=true&limit=100${cursor === null ? '' : `&cursor=${cursor}`}`, {
      headers: json('load-test', 'admin'),
      tags: { name: 'admin-orders' },
    });
    if (page.status !== 200) throw new Error(`could not list the orders of SKU ${skuId}: ${page.status}`);
    const { items, nextCursor } = page.json() as unknown as { items: PersistedOrder[]; nextCursor: string | null };
    orders.push(...items);
    cursor = nextCursor;
  } while (cursor !== null);
  return orders;
}

export const address = {
  name: 'Load Tester',
  phone: '+44 20 7946 0000',
  line1: '1 Spike Street',
  city: 'London',
  postalCode: 'N1 9GU',
  country: 'GB',
};

/** POST /v1/orders with a fresh idempotency key, tagged so thresholds can single it out. */
export function checkout(buyer: string, skuId: string, idempotencyKey: string): RefinedResponse<'text'> {
  return http.post(`${BASE_URL}/v1/orders`, JSON.stringify({ items: [{ skuId, qty: 1 }], address }), {
    headers: json(buyer, 'buyer', { 'idempotency-key': idempotencyKey }),
    tags: { name: 'checkout' },
  });
}

export function getOrder(buyer: string, orderId: string): RefinedResponse<'text'> {
  return http.get(`${BASE_URL}/v1/orders/${orderId}`, { headers: json(buyer, 'buyer'), tags: { name: 'get-order' } });
}

export function listOrders(buyer: string): RefinedResponse<'text'> {
  return http.get(`${BASE_URL}/v1/orders?limit=20`, { headers: json(buyer, 'buyer'), tags: { name: 'list-orders' } });
}

export function pay(buyer: string, orderId: string): RefinedResponse<'text'> {
  return http.post(`${BASE_URL}/v1/orders/${orderId}/pay`, JSON.stringify({ method: 'card' }), {
    headers: json(buyer, 'buyer'),
    tags: { name: 'pay' },
  });
}

export function confirmReceipt(buyer: string, orderId: string): RefinedResponse<'text'> {
  return http.post(`${BASE_URL}/v1/orders/${orderId}/confirm-receipt`, '{}', { headers: json(buyer, 'buyer'), tags: { name: 'confirm-receipt' } });
}

/** A warehouse event signed as the warehouse system signs it (x-signature: sha256=<hex of the raw body>). */
export function warehouseCallback(orderId: string, event: 'PICKED' | 'PACKED' | 'SHIPPED' | 'DELIVERED'): RefinedResponse<'text'> {
  const body = JSON.stringify({ orderId, event, at: new Date().toISOString(), ...(event === 'SHIPPED' ? { trackingNo: `TRK-${orderId}` } : {}) });
  return http.post(`${BASE_URL}/v1/callbacks/warehouse`, body, {
    headers: { 'content-type': 'application/json', 'x-signature': `sha256=${crypto.hmac('sha256', WAREHOUSE_CALLBACK_SECRET, body, 'hex')}` },
    tags: { name: 'warehouse-callback' },
  });
}

/** A number from the environment, so one script serves a laptop run and a full-size one. */
export function envNumber(name: string, fallback: number): number {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got '${raw}'`);
  return value;
}
