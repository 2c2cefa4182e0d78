import { createHash } from 'node:crypto';
import { orderGroupSuffix } from '@orders/stock';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A child order's id: a ULID with its parent's time part and 80 bits derived from the
 * parent's id and the child's (channel, merchant, warehouse). Deterministic, so a
 * retried split writes the same children; ULID-shaped and time-sortable like every
 * order id (API.md), so children sit next to their parent in any listing. A parent that
 * runs in a stock bucket passes its bucket's suffix on: a child's refund restocks that bucket.
 */
export function childOrderId(parentOrderId: string, key: string): string {
  const digest = createHash('sha256').update(`${parentOrderId}/${key}`).digest();
  let bits = 0n;
  for (let i = 0; i < 10; i++) bits = (bits << 8n) | BigInt(digest[i]!);
  let random = '';
  for (let i = 0; i < 16; i++) {
    random = CROCKFORD[Number(bits & 31n)]! + random;
    bits >>= 5n;
  }
  return `${parentOrderId.slice(0, 10)}${random}${orderGroupSuffix(parentOrderId)}`;
}
