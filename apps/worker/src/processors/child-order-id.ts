import { createHash } from 'node:crypto';
import { orderIdDigits } from '@orders/domain';
import { orderGroupSuffix } from '@orders/stock';

/**
 * A child order's id: a ULID with its parent's time part and 80 bits derived from the
 * parent's id and the child's (channel, merchant, warehouse). Deterministic, so a
 * retried split writes the same children; ULID-shaped and time-sortable like every
 * order id (API.md), so children sit next to their parent in any listing. A parent that
 * runs in a stock bucket passes its bucket's suffix on: a child's refund restocks that bucket.
 */
export function childOrderId(parentOrderId: string, key: string): string {
  const digest = createHash('sha256').update(`${parentOrderId}/${key}`).digest();
  const random = orderIdDigits(BigInt(`0x${digest.toString('hex', 0, 10)}`), 16);
  return `${parentOrderId.slice(0, 10)}${random}${orderGroupSuffix(parentOrderId)}`;
}
