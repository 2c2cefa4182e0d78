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
