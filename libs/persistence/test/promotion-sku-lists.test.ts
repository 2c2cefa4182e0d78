import { PricingRepository } from '@orders/persistence';
import { createTestEnv, type TestEnv } from '@orders/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('a promotion covering as many SKUs as the api accepts', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('promotion_sku_lists');
  });
  afterAll(async () => env?.cleanup());

  it('keeps all 1,000 SKU ids of 64 characters, in order', async () => {
    const skuIds = Array.from({ length: 1_000 }, (_, i) => `SKU-${String(i).padStart(4, '0')}-${'x'.repeat(55)}`);
    expect(new Set(skuIds.map((skuId) => skuId.length))).toEqual(new Set([64]));
    const at = new Date(Date.UTC(2026, 0, 1));
    await new PricingRepository(env.db).createPromotion({ promotionId: 'WIDE', title: 'every lamp', thresholdCents: 0, offCents: 100, skuIds, startsAt: at, endsAt: new Date(Date.UTC(2027, 0, 1)) }, async () => at);
    const row = await env.db.selectFrom('promotions').select('sku_ids').where('promotion_id', '=', 'WIDE').executeTakeFirstOrThrow();
    expect(JSON.parse(row.sku_ids!)).toEqual(skuIds);
  });
});
