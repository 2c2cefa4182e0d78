import { endCoupon } from '@orders/api';
import { CouponRepository, PricingRepository, StockLedgerRepository } from '@orders/persistence';
import { buyerAddress, createTestEnv, reservationOf, type TestEnv } from '@orders/testing';
import { connectWorker, startWorkers, workerLog, type RunningWorkers } from '@orders/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StockReconciler } from '../src/stock-reconciler.js';

/**
 * PUT /v1/admin/coupons/:code/end while the coupon's create is still
 * between its MySQL commit and its publish to Redis (an admin who sees the wrong discount in the
 * create's body, or whose create answered 5xx, ends it at once). The end is the route's own
 * endCoupon (apps/api/src/pricing-admin.ts); the create is PricingRepository.createCoupon with the
 * route's publish (Inventory.publishCoupon of the body), the end landing between its two steps.
 */
describe('a coupon ended while its create is still publishing it', () => {
  let env: TestEnv;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('coupon_ended_beside_publish');
    workers = startWorkers(connectWorker({ ...env.config, WORKER_QUEUES: ['orders'] } as never, workerLog('silent')));
  });
  afterAll(async () => {
    await workers?.close();
    await env?.cleanup();
  });

  it('is refused at checkout once the end answered, as MySQL prices it', async () => {
    const { inventory, catalog } = workers.deps;
    await catalog.createSku({ skuId: 'LAMP', title: 'Lamp', priceCents: 10_000, merchantId: 'shop', channel: 'self', warehouseId: 'wh', deduction: 'placement', flashSale: null }, 10, 'opening-LAMP', () =>
      inventory.initSku({ skuId: 'LAMP', available: 10, deduction: 'placement', saleStartsAt: null, saleEndsAt: null, perUserLimit: 0 }),
    );
    const pricing = new PricingRepository(env.db);
    const deps = { pricing, inventory };
    const now = Date.now();
    const coupon = { code: 'WRONG90', kind: 'percent', percentOff: 90, offCents: 0, minSpendCents: 0, perBuyerLimit: 1, startsAt: new Date(now - 60_000), endsAt: new Date(now + 86_400_000) } as const;
    let endAnswered: { endsAt: Date } | null = null;
    // the create committed; its publish is under way when the end comes in and is answered 200
    await pricing.createCoupon(
      coupon,
      async () => {
        endAnswered = await endCoupon(deps, coupon.code);
        await inventory.publishCoupon(coupon);
      },
      () => inventory.couponPublished(coupon.code),
    );
    expect(endAnswered).not.toBeNull();
    const mysqlEnd = (await pricing.findCoupon(coupon.code))!.endsAt.getTime();
    expect(mysqlEnd).toBeLessThanOrEqual(Date.now() + 1);
    // a buyer checking out after the end's 200 with the coupon
    const checkout = await inventory
      .reserveStock(reservationOf('buyer-late', [{ skuId: 'LAMP', qty: 1 }], { payload: { address: buyerAddress, couponCode: coupon.code } }))
      .then(() => 'accepted', (error: Error) => error.constructor.name);
    const redisEnd = Number(await env.redis.hget(`${env.config.REDIS_KEY_PREFIX}{g0}:coupon:${coupon.code}`, 'endsAt'));
    expect({ checkout, redisEnd }).toEqual({ checkout: expect.not.stringMatching(/^accepted$/), redisEnd: mysqlEnd });
  });

  it('stays ended at checkout when a stock repair (npm run reconcile -- --repair) publishing the coupons runs beside the end', async () => {
    const { inventory, catalog, redis, db } = workers.deps;
    const pricing = new PricingRepository(env.db);
    const now = Date.now();
    const coupon = { code: 'WRONG80', kind: 'percent', percentOff: 80, offCents: 0, minSpendCents: 0, perBuyerLimit: 1, startsAt: new Date(now - 60_000), endsAt: new Date(now + 86_400_000) } as const;
    await pricing.createCoupon(coupon, () => inventory.publishCoupon(coupon), () => inventory.couponPublished(coupon.code));
    let endAnswered: { endsAt: Date } | null = null;
    // the repair read the coupons in force from MySQL; the end comes in and is answered 200 before it publishes them
    class EndArrivesAfterRead extends CouponRepository {
      override async inForce(at: Date, givenBackSince?: Date) {
        const read = await super.inForce(at, givenBackSince);
        endAnswered = await endCoupon({ pricing, inventory }, coupon.code);
        return read;
      }
    }
    const reconciler = new StockReconciler({ redis, inventory, ledger: new StockLedgerRepository(db), catalog, coupons: new EndArrivesAfterRead(db), log: workerLog('silent') }, { settleMs: 0 });
    await reconciler.reconcile({ repair: true });
    expect(endAnswered).not.toBeNull();
    const mysqlEnd = (await pricing.findCoupon(coupon.code))!.endsAt.getTime();
    const checkout = await inventory
      .reserveStock(reservationOf('buyer-after-repair', [{ skuId: 'LAMP', qty: 1 }], { payload: { address: buyerAddress, couponCode: coupon.code } }))
      .then(() => 'accepted', (error: Error) => error.constructor.name);
    const redisEnd = Number(await env.redis.hget(`${env.config.REDIS_KEY_PREFIX}{g0}:coupon:${coupon.code}`, 'endsAt'));
    expect({ checkout, redisEnd }).toEqual({ checkout: expect.not.stringMatching(/^accepted$/), redisEnd: mysqlEnd });
  });
});
