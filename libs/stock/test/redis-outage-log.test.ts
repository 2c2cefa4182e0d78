import { logRedisOutages } from '@orders/stock';
import { waitFor } from '@orders/testing';
import { EventEmitter } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBehindLink } from './support/held-link.js';

/** The lines a process would log, kept for the test to read. */
function recordedLog() {
  const lines: Array<{ level: string; message: string; details: Record<string, unknown> }> = [];
  const line = (level: string) => (details: object, message: string) => void lines.push({ level, message, details: details as Record<string, unknown> });
  return { lines, log: { warn: line('warn'), info: line('info'), error: line('error') } };
}

/** A connection refused, as ioredis reports it for a BullMQ worker's own connection. */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });

describe("a process's log of its Redis connection, with a BullMQ worker's connections beside it", () => {
  const { lines, log } = recordedLog();
  const sibling = new EventEmitter();
  let behind: Awaited<ReturnType<typeof redisBehindLink>>;

  beforeAll(async () => {
    behind = await redisBehindLink('outage-log', { retryStrategy: () => 50 });
    logRedisOutages(behind.client, 'worker', log, [sibling]);
    await behind.idle();
  });
  afterAll(async () => {
    behind.client.disconnect();
    await behind.link.close();
  });

  it('says Redis is lost once and back once for an outage, counting the siblings’ errors, and not lost again for a sibling still reconnecting after it', async () => {
    await behind.link.cut();
    await waitFor(async () => lines.some((line) => line.message === 'Redis connection lost: reconnecting'), { what: 'the lost line' });
    sibling.emit('error', refused());
    sibling.emit('error', refused());
    await behind.link.restore();
    await waitFor(async () => lines.some((line) => line.message === 'Redis connection back'), { what: 'the back line' });

    // the sibling's reconnect attempt from before the restore answers after this connection is back
    sibling.emit('error', refused());
    expect(await behind.client.ping()).toBe('PONG');
    expect(lines.map((line) => [line.level, line.message])).toEqual([
      ['warn', 'Redis connection lost: reconnecting'],
      ['info', 'Redis connection back'],
    ]);
    expect(lines[1]?.details.errorsWhileAway).toBeGreaterThanOrEqual(2);
  });

  it('says nothing of a sibling refused while this connection is still making its first connection, Redis being there', async () => {
    const starting = recordedLog();
    const late = await redisBehindLink('outage-log-starting', { lazyConnect: true });
    try {
      const startingSibling = new EventEmitter();
      logRedisOutages(late.client, 'worker', starting.log, [startingSibling]);
      startingSibling.emit('error', refused());
      expect(await late.client.ping()).toBe('PONG');
      expect(starting.lines).toEqual([]);
    } finally {
      late.client.disconnect();
      await late.link.close();
    }
  });

  it('logs an error of a sibling that is not Redis being away as it comes', () => {
    lines.length = 0;
    sibling.emit('error', new Error('Missing lock for job 7. moveToFinished'));
    expect(lines.map((line) => [line.level, line.message])).toEqual([['error', 'Redis or queue error']]);
  });
});
