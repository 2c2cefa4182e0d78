// answers are read as the JSON a client sees
/* eslint-disable @typescript-eslint/no-explicit-any */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '@orders/config';
import { buildPaymentSim, paymentSimOptions } from '@orders/payment-sim';
import type { FastifyInstance } from 'fastify';
import { createDb } from '@orders/persistence';
import { TEST_MYSQL_URL, freePort } from '@orders/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderSystem, type OrderSystem } from './support/order-system.js';

const shippedConfig = fileURLToPath(new URL('../../../config/', import.meta.url));

/** What docker-compose.yml gives every app process (x-app-env, its defaults as on a machine with no .env). */
const composeEnv = {
  NODE_ENV: 'production',
  HOST: '0.0.0.0',
  LOG_LEVEL: 'info',
  SHOP_CURRENCY: 'USD',
  MYSQL_URL: 'mysql://orders:orders-compose@mysql:3306/orders',
  REDIS_URL: 'redis://redis:6379',
  AUTH_JWT_SECRET: 'compose-local-jwt-secret-0123456789',
  PAYMENT_CALLBACK_SECRET: 'compose-local-payment-callback-secret',
  WAREHOUSE_CALLBACK_SECRET: 'compose-local-warehouse-callback-secret',
  PAYMENT_URL: 'http://payment-sim:3101',
  WAREHOUSE_URL: 'http://warehouse-sim:3102',
  CALLBACK_BASE_URL: 'http://api:3000',
  SHUTDOWN_GRACE_MS: '10000',
  MIGRATE_ON_START: 'false',
  PORT: '3000',
};

describe('an operator setting written in config/<NODE_ENV>.json', () => {
  it('misspelt in config/production.json, is refused naming it, rather than the process starting with the default', () => {
    // the image's config/ with the operator's production.json: they mean to lower the anonymous
    // per-IP budget from 1200 to 100 a minute, and write one letter too many
    const dir = mkdtempSync(path.join(tmpdir(), 'deploy-settings-config-'));
    try {
      copyFileSync(path.join(shippedConfig, 'default.json'), path.join(dir, 'default.json'));
      writeFileSync(path.join(dir, 'production.json'), JSON.stringify({ HOST: '0.0.0.0', LOG_LEVEL: 'info', WEBHOOK_PRIVATE_RECEIVERS: false, RATE_LIMIT_PER_IPS: 100 }));
      let outcome: unknown;
      try {
        outcome = loadConfig(composeEnv, dir).RATE_LIMIT_PER_IP;
      } catch (error) {
        outcome = error;
      }
      // config/README.md: "libs/config validates the result at start and stops the process with a message naming each bad variable"
      expect(outcome, 'a setting no process reads is refused, naming it').toBeInstanceOf(ConfigError);
      expect(String((outcome as Error).message ?? outcome)).toContain('RATE_LIMIT_PER_IPS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The api reached by the payment and warehouse systems through a gateway that serves it under a
 * path (`https://gateway.example/orders-api/...` -> the api's `/...`): CALLBACK_BASE_URL is
 * "the api's base URL as the external systems reach it, for their callbacks" (libs/config).
 */
describe('CALLBACK_BASE_URL with a path, the api behind a gateway', () => {
  let system: OrderSystem;
  let gateway: Server;
  let apiPort = 0;
  let gatewayPort = 0;
  const PREFIX = '/orders-api';
  /** What reached the gateway outside its prefix: the gateway answers 404 to those. */
  const missed: string[] = [];

  beforeAll(async () => {
    gatewayPort = await freePort();
    gateway = pathGateway(PREFIX, () => apiPort, missed);
    await new Promise<void>((resolve) => gateway.listen(gatewayPort, '127.0.0.1', () => resolve()));
    system = await startOrderSystem('deploy_callbacks_path', { CALLBACK_BASE_URL: `http://127.0.0.1:${gatewayPort}${PREFIX}` });
    apiPort = (system.api.server.address() as AddressInfo).port;
    await system.createSku({ skuId: 'KETTLE', priceCents: 2_500, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.close();
    await new Promise((resolve) => gateway?.close(resolve));
  });

  it("pays a buyer's order behind a gateway path: the payment system is told to call back under the api's base URL, path and all", async () => {
    // the gateway itself works: the api answers through it
    expect((await fetch(`http://127.0.0.1:${gatewayPort}${PREFIX}/health/live`)).status).toBe(200);

    const orderId = await system.checkout('gwen', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    const pay = await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('gwen'), body: { method: 'card' } });
    expect(pay.status).toBe(202);
    await system.paymentRequested(`${orderId}-full-1`);
    const charge = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.find((p: any) => p.orderId === orderId);
    // where the payment system was told to report the outcome: under the base URL the operator gave
    expect.soft(charge?.notifyUrl).toBe(`http://127.0.0.1:${gatewayPort}${PREFIX}/v1/callbacks/payment`);
    // and so the buyer's order, paid, reads PAID (the payment simulator answers at once)
    const order = await system.waitForStatus(orderId, 'PAID', 10_000).catch(async () => system.order(orderId));
    expect({ status: order.status, callbacksMissedByTheGateway: missed }).toEqual({ status: 'PAID', callbacksMissedByTheGateway: [] });
  });

  it("ships a paid order behind a gateway path: the warehouse is told to call back under the api's base URL, path and all", async () => {
    missed.length = 0;
    const orderId = await system.checkout('hugo', [{ skuId: 'KETTLE', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('hugo'), body: { method: 'card' } })).status).toBe(202);
    const paymentId = `${orderId}-full-1`;
    await system.paymentRequested(paymentId);
    const charge = (await system.paymentSim.request('GET', '/__admin/payments')).body.payments.find((p: any) => p.paymentId === paymentId);
    // the payment's outcome brought to the api directly (as the payment system would, told the right URL)
    const paid = await system.signedCallback('payment', { orderId, paymentId, transactionId: charge?.transactionId ?? `txn-${orderId}`, status: 'SUCCEEDED', amountCents: charge?.amountCents ?? 2_500, at: new Date().toISOString() });
    expect(paid.status).toBe(200);
    await system.waitForStatus(orderId, 'IN_FULFILLMENT', 15_000);
    const parcel = (await system.warehouseSim.request('GET', '/__admin/orders')).body.orders.find((o: any) => o.orderId === orderId);
    expect.soft(parcel?.notifyUrl).toBe(`http://127.0.0.1:${gatewayPort}${PREFIX}/v1/callbacks/warehouse`);
    // the warehouse ships the parcel and reports it (the simulator retries its callback until it gives up)
    const shipped = await system.warehouseSim.request('POST', `/__admin/orders/${orderId}/events`, { body: { event: 'SHIPPED' } });
    const order = await system.waitForStatus(orderId, 'SHIPPED', 5_000).catch(async () => system.order(orderId));
    expect({ status: order.status, warehouseCallbackAnswer: shipped.body.callbackStatus }).toEqual({ status: 'SHIPPED', warehouseCallbackAnswer: 200 });
  });
});

/** A tiny gateway: `${prefix}/...` forwarded to the port `target()` names, anything else 404 (and noted). */
function pathGateway(prefix: string, target: () => number, missed: string[]): Server {
  return createServer((incoming, outgoing) => {
    const url = incoming.url ?? '/';
    if (!url.startsWith(`${prefix}/`)) {
      missed.push(`${incoming.method} ${url}`);
      outgoing.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such route at the gateway"}');
      return;
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: target(), method: incoming.method, path: url.slice(prefix.length), headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', () => outgoing.writeHead(502).end());
    incoming.pipe(upstream);
  });
}

/** The payment system reached under a path of its provider's host (`https://psp.example/shop-a/...`): PAYMENT_URL with a path. */
describe('PAYMENT_URL with a path, the payment system behind its provider\'s gateway', () => {
  let system: OrderSystem;
  let gateway: Server;
  let psp: FastifyInstance;
  let pspPort = 0;
  let gatewayPort = 0;
  const PREFIX = '/shop-a';
  const missed: string[] = [];

  beforeAll(async () => {
    [gatewayPort, pspPort] = [await freePort(), await freePort()];
    gateway = pathGateway(PREFIX, () => pspPort, missed);
    await new Promise<void>((resolve) => gateway.listen(gatewayPort, '127.0.0.1', () => resolve()));
    system = await startOrderSystem('deploy_payment_url_path', { PAYMENT_URL: `http://127.0.0.1:${gatewayPort}${PREFIX}` });
    // the provider's payment system (the simulator, with this system's secret), behind the gateway
    psp = await buildPaymentSim(paymentSimOptions(system.env.config));
    await psp.listen({ host: '127.0.0.1', port: pspPort });
    await system.createSku({ skuId: 'TOASTER', priceCents: 3_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 10, deduction: 'placement' });
  });
  afterAll(async () => {
    await system?.close();
    await psp?.close();
    await new Promise((resolve) => gateway?.close(resolve));
  });

  it("takes a buyer's card payment from a payment system reached under a path: the worker asks there, not at the host's root", async () => {
    // the payment system answers through the gateway
    expect((await fetch(`http://127.0.0.1:${gatewayPort}${PREFIX}/health/live`)).status).toBe(200);
    const orderId = await system.checkout('ivy', [{ skuId: 'TOASTER', qty: 1 }]);
    await system.waitForStatus(orderId, 'PENDING_PAYMENT');
    expect((await system.request('POST', `/v1/orders/${orderId}/pay`, { token: system.token('ivy'), body: { method: 'card' } })).status).toBe(202);
    const order = await system.waitForStatus(orderId, 'PAID', 10_000).catch(async () => system.order(orderId));
    expect({ status: order.status, payments: order.payments?.map((p: any) => p.status), requestsOutsideThePaymentSystemsPath: missed }).toEqual({
      status: 'PAID',
      payments: ['SUCCEEDED'],
      requestsOutsideThePaymentSystemsPath: [],
    });
  });
});

describe('MYSQL_URL options', () => {
  it('refuses a query MySQL\'s connection would drop unsaid, and its TLS options but as JSON', () => {
    for (const [query, refused] of [['?charset=latin1', /MYSQL_URL takes ssl=.* alone in its query, got 'charset'/], ['?ssl=yes', /MYSQL_URL's ssl must be true or mysql2's TLS options as a JSON object, got 'yes'/]] as const) {
      expect(() => loadConfig({ NODE_ENV: 'test', MYSQL_URL: `${TEST_MYSQL_URL.replace(/\?.*$/, '')}${query}` })).toThrow(refused);
    }
  });

  it('connects to MySQL with TLS where MYSQL_URL asks for it, never in plain text: refused by a server without TLS', async () => {
    // mysql2's own URL form for TLS; the test MySQL has TLS disabled, so a client that honours it must refuse to connect
    const url = new URL(TEST_MYSQL_URL);
    url.pathname = '/mysql';
    url.search = `?ssl=${encodeURIComponent('{"rejectUnauthorized":true}')}`;
    const accepted = (() => {
      try {
        return loadConfig({ NODE_ENV: 'test', MYSQL_URL: url.toString() }).MYSQL_URL;
      } catch (error) {
        return error;
      }
    })();
    if (accepted instanceof ConfigError) return; // refused at start, naming it: fine
    const { db } = createDb(url.toString(), 1);
    try {
      const outcome = await sql<{ Value: string }>`SHOW SESSION STATUS LIKE 'Ssl_cipher'`.execute(db).then(
        (result) => `connected, cipher '${result.rows[0]?.Value ?? ''}'`,
        () => 'refused',
      );
      // either refused (the server offers no TLS) or encrypted: never plain text while TLS was asked for
      expect(outcome).not.toBe("connected, cipher ''");
    } finally {
      await db.destroy();
    }
  });
});
