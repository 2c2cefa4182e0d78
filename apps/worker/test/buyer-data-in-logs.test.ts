import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerLog } from '../src/worker-log.js';

describe("the worker's log when MySQL refuses a statement holding a buyer's data", () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('worker_buyer_data_in_logs');
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("logs the error, and one it caused, by code, errno and statement kind, with none of the buyer's address", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = workerLog('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    // the step an address change records, twice: the second is a duplicate key
    const step = { order_id: '01JBUYERDATA0000000000000A', version: 2, from_status: 'PAID', action: 'change_address', to_status: 'PAID', actor: 'buyer', detail: "Flat 2, O'Brien House, LS1 4AP Leeds", at: new Date() };
    await env.db.insertInto('order_history').values(step).execute();
    const failed = await env.db.insertInto('order_history').values(step).execute().catch((error: unknown) => error);

    log.warn({ jobId: '7', err: failed }, 'job failed');
    log.error({ err: new Error('order-event publisher failed', { cause: failed }) }, 'order-event publisher failed; it starts again');

    expect(lines.map(({ msg, err }) => ({ msg, err }))).toEqual([
      { msg: 'job failed', err: expect.objectContaining({ type: 'Error', code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', statementKind: 'insert', message: 'Duplicate entry …' }) },
      { msg: 'order-event publisher failed; it starts again', err: expect.objectContaining({ type: 'Error', message: 'order-event publisher failed: Duplicate entry …' }) },
    ]);
    // the stack's frames stay, to find the statement's caller
    expect(lines[0]!.err).toMatchObject({ stack: expect.stringMatching(/^Error: Duplicate entry …\n {4}at /) });
    const written = JSON.stringify(lines);
    for (const value of ["O'Brien", 'Brien House', 'LS1 4AP', 'Leeds', step.order_id]) expect(written).not.toContain(value);
    expect(written).not.toMatch(/"sql"|sqlMessage/);
  });
});
