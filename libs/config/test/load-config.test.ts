import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@orders/config';

describe('configuration', () => {
  it('starts from the documented defaults', () => {
    const config = loadConfig({ NODE_ENV: 'development' });
    expect(config.PORT).toBe(3000);
    expect(config.MYSQL_URL).toBe('mysql://root@127.0.0.1:3306/orders');
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.WORKER_QUEUES).toEqual(['orders', 'timers', 'payments', 'fulfillment', 'events']);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lets the environment override a default', () => {
    const config = loadConfig({ NODE_ENV: 'development', PORT: '8080', PAYMENT_TIMEOUT_MS: '5000' });
    expect(config.PORT).toBe(8080);
    expect(config.PAYMENT_TIMEOUT_MS).toBe(5000);
  });

  it('names every malformed variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({ NODE_ENV: 'development', PORT: 'eighty', PAYMENT_TIMEOUT_MS: '-5', MYSQL_URL: 'postgres://x', WORKER_QUEUES: 'orders,nope' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain("PORT must be a whole number, got 'eighty'");
    expect(message).toContain('PAYMENT_TIMEOUT_MS must be between 1');
    expect(message).toContain('MYSQL_URL must use mysql:');
    expect(message).toContain("WORKER_QUEUES names unknown queue 'nope'");
  });

  it('reads which proxies to trust as Fastify takes them, and refuses anything else', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).TRUST_PROXY).toBe(false);
    expect(loadConfig({ NODE_ENV: 'development', TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ NODE_ENV: 'development', TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).TRUST_PROXY).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(() => loadConfig({ NODE_ENV: 'development', TRUST_PROXY: 'the balancer' })).toThrow(/TRUST_PROXY must be true, false, a hop count/);
  });

  it('talks to one Redis unless cluster nodes are set, and then wants the queues under a hash tag', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).REDIS_CLUSTER_NODES).toEqual([]);
    const cluster = loadConfig({ NODE_ENV: 'development', REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001', QUEUE_PREFIX: '{osq}' });
    expect(cluster.REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-b', port: 7001 },
    ]);
    expect(() => loadConfig({ NODE_ENV: 'development', REDIS_CLUSTER_NODES: '10.0.0.1' })).toThrow(/REDIS_CLUSTER_NODES must be comma-separated host:port pairs, got '10.0.0.1'/);
    expect(() => loadConfig({ NODE_ENV: 'development', REDIS_CLUSTER_NODES: '10.0.0.1:7000' })).toThrow(/QUEUE_PREFIX must carry a hash tag such as '\{osq\}'/);
    expect(() => loadConfig({ NODE_ENV: 'development', REDIS_CLUSTER_NODES: '10.0.0.1:7000', QUEUE_PREFIX: '{}osq' })).toThrow(/QUEUE_PREFIX must carry a hash tag/);
    expect(() => loadConfig({ NODE_ENV: 'development', REDIS_KEY_PREFIX: '{os}:' })).toThrow(/REDIS_KEY_PREFIX may hold only letters/);
  });

  it('refuses a MySQL pool of one connection, which the order-event publisher would keep for its lock', () => {
    expect(() => loadConfig({ NODE_ENV: 'development', MYSQL_POOL_SIZE: '1' })).toThrow(/MYSQL_POOL_SIZE must be between 2 and/);
    expect(loadConfig({ NODE_ENV: 'development', MYSQL_POOL_SIZE: '2' }).MYSQL_POOL_SIZE).toBe(2);
  });

  it('refuses order limits under which the dearest order would total more cents than a number holds exactly', () => {
    expect(loadConfig({ NODE_ENV: 'development', MAX_ORDER_LINES: '90', MAX_LINE_QTY: '999' })).toMatchObject({ MAX_ORDER_LINES: 90, MAX_LINE_QTY: 999 });
    expect(() => loadConfig({ NODE_ENV: 'development', MAX_ORDER_LINES: '91', MAX_LINE_QTY: '999' })).toThrow(/MAX_ORDER_LINES × \(MAX_LINE_QTY \+ 1\) must be at most 90071, .*got 91 × 1000/);
    expect(() => loadConfig({ NODE_ENV: 'development', MAX_LINE_QTY: '1000000' })).toThrow(/MAX_ORDER_LINES × \(MAX_LINE_QTY \+ 1\) must be at most/);
  });

  it('refuses the development secrets in production, short ones, and one secret for tokens and callbacks alike, or for both callbacks', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/AUTH_JWT_SECRET still holds the development default/);
    const shared = 'one-secret-for-everything-0123456789';
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: shared, PAYMENT_CALLBACK_SECRET: shared, WAREHOUSE_CALLBACK_SECRET: 'warehouse-secret-0123456789-abcdef' })).toThrow(
      /AUTH_JWT_SECRET must differ from the callback secrets/,
    );
    const secrets = { AUTH_JWT_SECRET: 'a-real-jwt-secret-of-this-shop-0123456789', PAYMENT_CALLBACK_SECRET: 'a-real-payment-secret-0123456789', WAREHOUSE_CALLBACK_SECRET: 'a-real-warehouse-secret-0123456789' };
    expect(loadConfig({ NODE_ENV: 'production', ...secrets }).AUTH_JWT_SECRET).toBe(secrets.AUTH_JWT_SECRET);
    expect(() => loadConfig({ NODE_ENV: 'production', ...secrets, AUTH_JWT_SECRET: 'aaaaaaaaaaaaaaaa' })).toThrow(/AUTH_JWT_SECRET must be at least 32 characters in production/);
    expect(() => loadConfig({ NODE_ENV: 'production', ...secrets, WAREHOUSE_CALLBACK_SECRET: secrets.PAYMENT_CALLBACK_SECRET })).toThrow(
      /PAYMENT_CALLBACK_SECRET and WAREHOUSE_CALLBACK_SECRET must differ in production/,
    );
  });

  it('refuses in production a lost payment callback asked about no sooner than its order stops waiting for it', () => {
    const secrets = { AUTH_JWT_SECRET: 'a-real-jwt-secret-of-this-shop-0123456789', PAYMENT_CALLBACK_SECRET: 'a-real-payment-secret-0123456789', WAREHOUSE_CALLBACK_SECRET: 'a-real-warehouse-secret-0123456789' };
    expect(() => loadConfig({ NODE_ENV: 'production', ...secrets, PAYMENT_TIMEOUT_MS: '300000' })).toThrow(/PAYMENT_CONFIRMATION_WAIT_MS must be below PAYMENT_TIMEOUT_MS in production.*got 300000 and 300000/);
    expect(loadConfig({ NODE_ENV: 'production', ...secrets, PAYMENT_TIMEOUT_MS: '300000', PAYMENT_CONFIRMATION_WAIT_MS: '120000' }).PAYMENT_CONFIRMATION_WAIT_MS).toBe(120_000);
    // a test's short timeout beside the default wait
    expect(loadConfig({ NODE_ENV: 'test', PAYMENT_TIMEOUT_MS: '5000' }).PAYMENT_TIMEOUT_MS).toBe(5_000);
  });

  it('refuses a timer setting Node would take as 1 ms, and a job backoff that would retry in a tight loop', () => {
    let error: unknown;
    try {
      loadConfig({ NODE_ENV: 'development', PAYMENT_BREAKER_TIMEOUT_MS: '2147483648', JOB_BACKOFF_MS: '0' });
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toContain('PAYMENT_BREAKER_TIMEOUT_MS must be between 1 and 2147483647, got 2147483648');
    expect((error as Error).message).toContain('JOB_BACKOFF_MS must be between 10 and 2147483647, got 0');
    expect(loadConfig({ NODE_ENV: 'development', AFTER_SALES_WINDOW_MS: String(30 * 86_400_000) }).AFTER_SALES_WINDOW_MS).toBe(2_592_000_000);
  });

  it('takes a presale balance due weeks after its deposit, longer than a Node timer allows too', () => {
    const day = 86_400_000;
    expect(loadConfig({ NODE_ENV: 'development' }).PRESALE_BALANCE_TIMEOUT_MS).toBe(3 * day);
    const weeksLater = loadConfig({ NODE_ENV: 'development', PAYMENT_TIMEOUT_MS: String(2 * day), PRESALE_BALANCE_TIMEOUT_MS: String(20 * day) });
    expect([weeksLater.PAYMENT_TIMEOUT_MS, weeksLater.PRESALE_BALANCE_TIMEOUT_MS]).toEqual([2 * day, 20 * day]);
    // a BullMQ job's delay, not a Node timer's: past the 2^31-1 ms (24.8 days) a setTimeout would take as 1 ms
    expect(loadConfig({ NODE_ENV: 'development', PRESALE_BALANCE_TIMEOUT_MS: String(30 * day) }).PRESALE_BALANCE_TIMEOUT_MS).toBe(30 * day);
    expect(() => loadConfig({ NODE_ENV: 'development', PRESALE_BALANCE_TIMEOUT_MS: '0' })).toThrow('PRESALE_BALANCE_TIMEOUT_MS must be between 1');
  });
});
