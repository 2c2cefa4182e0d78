import { priceOrder } from '@orders/domain';
import { CatalogRepository, OrderRepository } from '@orders/persistence';
import { buyerAddress, createSku, createTestEnv, type TestEnv } from '@orders/testing';
import { ulid } from 'ulid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectLog, startApi, type ApiUnderTest } from './support/api-under-test.js';

describe("the api's log when MySQL refuses a statement holding a buyer's data", () => {
  let env: TestEnv;
  let api: ApiUnderTest;
  const log = collectLog();

  beforeAll(async () => {
    env = await createTestEnv('api_buyer_data_in_logs');
    api = await startApi(env, { log });
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  it("logs the error by its code, errno and statement kind, with none of the buyer's new address", async () => {
    const items = [{ skuId: 'KETTLE', qty: 1 }];
    await createSku(api, api.token('ops', 'admin'), { skuId: 'KETTLE', title: 'Kettle', priceCents: 3_900, merchantId: 'shop', channel: 'self', warehouseId: 'wh-east', stock: 5, deduction: 'placement' });
    // an unpaid order, as the worker writes it
    const orderId = ulid();
    const now = new Date();
    const catalog = await new CatalogRepository(env.db).findSkus(['KETTLE']);
    await new OrderRepository(env.db).persistAcceptedOrders(
      [
        {
          accepted: { orderId, userId: 'ada', type: 'standard', items, address: buyerAddress, couponCode: null, acceptedAt: now.toISOString(), paymentDeadline: new Date(now.getTime() + 60_000).toISOString() },
          priced: priceOrder('standard', items, catalog, now),
        },
      ],
      now,
    );
    // another writer already recorded the order's next step: the address change's history row is a duplicate key
    const { version } = await env.db.selectFrom('orders').select('version').where('order_id', '=', orderId).executeTakeFirstOrThrow();
    await env.db
      .insertInto('order_history')
      .values({ order_id: orderId, version: version + 1, from_status: 'PENDING_PAYMENT', action: 'change_address', to_status: 'PENDING_PAYMENT', actor: 'buyer', detail: 'elsewhere', at: new Date() })
      .execute();

    const newAddress = { name: "Ada O'Brien", phone: '+44 7700 900123', line1: '7 Quiet Mews', city: 'Leeds', postalCode: 'LS1 4AP', country: 'GB' };
    const refused = await api.request('PATCH', `/v1/orders/${orderId}/address`, { token: api.token('ada'), body: { address: newAddress } });

    expect([refused.status, refused.body.code]).toEqual([500, 'INTERNAL']);
    const errors = log.lines.filter((line) => line.level >= 50);
    expect(errors.map(({ msg, orderId: logged, err }) => ({ msg, orderId: logged, err }))).toEqual([
      {
        msg: 'unhandled error',
        orderId,
        err: expect.objectContaining({ code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', statementKind: 'insert', message: 'Duplicate entry …' }),
      },
    ]);
    const written = JSON.stringify(log.lines);
    for (const value of ['7 Quiet Mews', 'Leeds', 'LS1 4AP', orderId + '-']) expect(written).not.toContain(value);
    expect(written).not.toMatch(/"sql"|sqlMessage/);
  });
});
