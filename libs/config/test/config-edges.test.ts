import { describe, expect, it } from 'vitest';
import { loadConfig, minorUnitsPerUnit } from '@orders/config';

const day = 86_400_000;
const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig({ NODE_ENV: 'development', ...env });
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
};

describe('configuration an operator sets at 3 a.m.', () => {
  it('refuses a worker lock or stalled-job check of 30 days, which BullMQ hands to setTimeout and Node runs every 1 ms', () => {
    const message = problemsOf({ WORKER_LOCK_DURATION_MS: String(30 * day), WORKER_STALLED_INTERVAL_MS: String(30 * day) });
    expect(message).toContain('WORKER_LOCK_DURATION_MS must be between 1000 and 2147483647, got 2592000000');
    expect(message).toContain('WORKER_STALLED_INTERVAL_MS must be between 1000 and 2147483647, got 2592000000');
    expect(loadConfig({ NODE_ENV: 'development', WORKER_LOCK_DURATION_MS: '2147483647', WORKER_STALLED_INTERVAL_MS: '2147483647' })).toMatchObject({
      WORKER_LOCK_DURATION_MS: 2_147_483_647,
      WORKER_STALLED_INTERVAL_MS: 2_147_483_647,
    });
  });

  it('refuses an order timer of 31,700 years (a typo of zeros), whose deadlines MySQL could not hold: every order would fail to be written; takes 10 years', () => {
    for (const name of ['PAYMENT_TIMEOUT_MS', 'FLASH_SALE_PAYMENT_TIMEOUT_MS', 'AUTO_CONFIRM_MS', 'AFTER_SALES_WINDOW_MS', 'RETURN_PARCEL_WINDOW_MS', 'RETURN_REVIEW_WINDOW_MS', 'PRESALE_BALANCE_TIMEOUT_MS']) {
      expect(problemsOf({ [name]: '1000000000000000' }), name).toContain(`${name} must be between 1 and ${3650 * day}, got 1000000000000000`);
      expect(loadConfig({ NODE_ENV: 'development', [name]: String(3650 * day) })[name as 'AUTO_CONFIRM_MS']).toBe(3650 * day);
    }
  });

  it('refuses a drain delay and grace period whose sum plus 1 s, the shutdown deadline, a Node timer would take as 1 ms', () => {
    // the api's primary kills its processes SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS + 1000 ms after SIGTERM
    expect(problemsOf({ SHUTDOWN_DRAIN_DELAY_MS: String(20 * day), SHUTDOWN_GRACE_MS: String(5 * day) })).toContain(
      'SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS must be at most 2147482647 ms (a Node timer, with 1 s added), got 1728000000 + 432000000',
    );
    // `npm start` waits SHUTDOWN_GRACE_MS + 1000 for its children
    expect(problemsOf({ SHUTDOWN_DRAIN_DELAY_MS: '0', SHUTDOWN_GRACE_MS: '2147483647' })).toContain('SHUTDOWN_DRAIN_DELAY_MS + SHUTDOWN_GRACE_MS must be at most 2147482647 ms');
    expect(loadConfig({ NODE_ENV: 'development', SHUTDOWN_DRAIN_DELAY_MS: '2147472647', SHUTDOWN_GRACE_MS: '10000' }).SHUTDOWN_GRACE_MS).toBe(10_000);
  });

  it("refuses a shop currency that is no ISO 4217 code (a symbol, lower case, a typo), naming it; takes one Node formats", () => {
    for (const raw of ['$', 'usd', 'EURO', 'XYZ']) expect(problemsOf({ SHOP_CURRENCY: raw }), raw).toContain(`SHOP_CURRENCY must be an ISO 4217 currency code such as USD, EUR or GBP, got '${raw}'`);
    expect(loadConfig({ NODE_ENV: 'development', SHOP_CURRENCY: 'JPY' }).SHOP_CURRENCY).toBe('JPY');
    expect(loadConfig({ NODE_ENV: 'development' }).SHOP_CURRENCY).toBe('USD');
    // amounts are kept in its minor units: what the dashboards divide them by
    expect(['USD', 'GBP', 'JPY', 'KWD'].map(minorUnitsPerUnit)).toEqual([100, 100, 1, 1000]);
  });

  it('refuses a give-up no later than its wait, under which no payment or refund left unreported would ever be asked about again', () => {
    expect(problemsOf({ PAYMENT_CONFIRMATION_WAIT_MS: '300000', PAYMENT_CONFIRMATION_GIVE_UP_MS: '300000' })).toContain('PAYMENT_CONFIRMATION_GIVE_UP_MS must be above PAYMENT_CONFIRMATION_WAIT_MS');
    expect(problemsOf({ REFUND_CONFIRMATION_WAIT_MS: '1800000', REFUND_CONFIRMATION_GIVE_UP_MS: '60000' })).toContain('REFUND_CONFIRMATION_GIVE_UP_MS must be above REFUND_CONFIRMATION_WAIT_MS');
    expect(problemsOf({ PAYMENT_CONFIRMATION_WAIT_MS: '300000', PAYMENT_CONFIRMATION_GIVE_UP_MS: '300001' })).toBe('accepted');
  });

  it('refuses job retries whose last wait passes a day (BullMQ doubles it with no ceiling: a failing job would wait for years, never reaching the dead letters)', () => {
    expect(problemsOf({ JOB_ATTEMPTS: '30', JOB_BACKOFF_MS: '1000' })).toContain("JOB_BACKOFF_MS × 2^(JOB_ATTEMPTS − 2), a failing job's last wait, must be at most 86400000 ms (a day), got 1000 × 2^28");
    expect(problemsOf({ JOB_ATTEMPTS: '18', JOB_BACKOFF_MS: '1000' })).toBe('accepted');
  });

  it("refuses a replica wait as long as Redis's command timeout, under which the WAIT runs: a replica acknowledging in time would be answered 503", () => {
    expect(problemsOf({ RESERVATION_REPLICA_ACKS: '1', RESERVATION_REPLICA_TIMEOUT_MS: '5000', REDIS_COMMAND_TIMEOUT_MS: '2000' })).toContain('RESERVATION_REPLICA_TIMEOUT_MS must be below REDIS_COMMAND_TIMEOUT_MS');
    // no replica waited for: no WAIT
    expect(problemsOf({ RESERVATION_REPLICA_ACKS: '0', RESERVATION_REPLICA_TIMEOUT_MS: '5000', REDIS_COMMAND_TIMEOUT_MS: '2000' })).toBe('accepted');
  });

  it('takes 0 as off where the README says so', () => {
    const off = loadConfig({ NODE_ENV: 'development', OVERDUE_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0', SOLD_OUT_MEMORY_MS: '0', RISK_VELOCITY_MAX_CHECKOUTS: '0', RESERVATION_REPLICA_ACKS: '0', AUTH_TOKEN_CACHE_SIZE: '0' });
    expect(off).toMatchObject({ OVERDUE_SWEEP_INTERVAL_MS: 0, RECONCILE_INTERVAL_MS: 0, SOLD_OUT_MEMORY_MS: 0, RISK_VELOCITY_MAX_CHECKOUTS: 0, RESERVATION_REPLICA_ACKS: 0, AUTH_TOKEN_CACHE_SIZE: 0 });
    expect(problemsOf({ SWEEP_INTERVAL_MS: '0' })).toContain('SWEEP_INTERVAL_MS must be between 1 and 2147483647, got 0');
  });

  it('names the variable of an empty, blank, fractional or scheme-less value', () => {
    const message = problemsOf({ PAYMENT_TIMEOUT_MS: '', WORKER_CONCURRENCY: '   ', JOB_ATTEMPTS: '2.5', PAYMENT_URL: '127.0.0.1:3101', REDIS_URL: 'localhost:6379', PORT: '65536', HOST: ' ' });
    expect(message).toContain("PAYMENT_TIMEOUT_MS must be a whole number, got ''");
    expect(message).toContain("WORKER_CONCURRENCY must be a whole number, got '   '");
    expect(message).toContain("JOB_ATTEMPTS must be a whole number, got '2.5'");
    expect(message).toContain("PAYMENT_URL must be a URL (http: or https:), got '127.0.0.1:3101'");
    expect(message).toContain("REDIS_URL must use redis: or rediss:, got 'localhost:'");
    expect(message).toContain('PORT must be between 0 and 65535, got 65536');
    expect(message).toContain('HOST must not be empty');
  });

  it("names a URL that does not parse without the password in it: the message goes to the operator's terminal and logs", () => {
    const message = problemsOf({ MYSQL_URL: 'mysql://orders:s3cret-of-the-shop@db:99999/orders', REDIS_URL: 'redis://:an0ther-secret@redis:70000' });
    expect(message).toContain("MYSQL_URL must be a URL (mysql:), got 'mysql://***@db:99999/orders'");
    expect(message).toContain("REDIS_URL must be a URL (redis: or rediss:), got 'redis://***@redis:70000'");
    expect(message).not.toMatch(/s3cret|an0ther/);
  });

  it('hides a password holding / or @ too, the usual reason such a URL does not parse (openssl rand -base64 writes /)', () => {
    for (const password of ['Ab3/x+Yz=', 'p#ss@w0rd']) {
      const message = problemsOf({ MYSQL_URL: `mysql://orders:${password}@mysql:3306/orders` });
      expect(message).toContain("MYSQL_URL must be a URL (mysql:), got 'mysql://***@mysql:3306/orders'");
      expect(message).not.toContain(password.slice(0, 3));
    }
  });
});
