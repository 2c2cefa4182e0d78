import type { OrderDb } from '@orders/persistence';
import type { HttpAnswer, HttpClient } from './http-client.js';

/**
 * Creates a SKU through the published API (`POST /v1/admin/skus`) as a test's setup, and
 * fails the setup with the api's answer unless it is 201. Returns the SKU as answered.
 */
export async function createSku(client: Pick<HttpClient, 'request'>, adminToken: string, sku: Record<string, unknown>): Promise<HttpAnswer['body']> {
  const created = await client.request('POST', '/v1/admin/skus', { token: adminToken, body: sku });
  if (created.status !== 201) throw new Error(`creating SKU ${String(sku.skuId)}: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body;
}

/** A SKU's available units as its stock ledger sums them: what Redis should hold once every accepted order is persisted. */
export async function ledgerAvailable(db: OrderDb, skuId: string): Promise<number> {
  const row = await db
    .selectFrom('stock_ledger')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('qty'), eb.lit(0)).as('available'))
    .where('sku_id', '=', skuId)
    .executeTakeFirstOrThrow();
  return Number(row.available);
}
