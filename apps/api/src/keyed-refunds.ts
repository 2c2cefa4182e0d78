import { createHash } from 'node:crypto';
import { IdempotencyConflict } from '@orders/domain';
import { refundIdFor, type OrderDb } from '@orders/persistence';

/** The optional Idempotency-Key header of the refunds and returns routes, as checkout's. */
export const idempotencyKeyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      description: 'optional; with it the refund (return) is the key’s: the same key and body answer the same one, another body 422 IDEMPOTENCY_CONFLICT',
    },
  },
} as const;

export type RequestedUnits = ReadonlyArray<{ skuId: string; qty: number }> | 'rest';

/**
 * Refunds and returns asked for under an Idempotency-Key: each one's id is the order part's
 * and the key's, then the request's fingerprint, so the same key and body name the refunds
 * they opened before, and the same key with another body is found under another fingerprint.
 * The fingerprint sits in the id because a refund keeps no other trace of the request.
 */
export class KeyedRefunds {
  private readonly prefixOf: (orderId: string) => string;
  private readonly fingerprint: string;

  constructor(
    private readonly db: OrderDb,
    kind: 'refund' | 'return',
    key: string,
    request: { reason: string; items: RequestedUnits },
  ) {
    this.prefixOf = (orderId) => `${refundIdFor(orderId, [kind, 'key', key])}-`;
    const units = request.items === 'rest' ? 'rest' : request.items.map((i) => `${i.skuId}x${i.qty}`).sort().join(',');
    this.fingerprint = createHash('sha256').update(`${request.reason}\u0000${units}`).digest('hex').slice(0, 8);
  }

  /** The id of the refund (return) of one order part under this key and request: at most 59 characters, inside refund_id's 64 with a part's `-<n>`. */
  idFor(orderId: string): string {
    return `${this.prefixOf(orderId)}${this.fingerprint}`;
  }

  /** 422 IDEMPOTENCY_CONFLICT when a part of the order holds a refund (return) of this key asked for with another body. */
  async refuseOtherBodies(orderIds: readonly string[]): Promise<void> {
    for (const orderId of orderIds) {
      // the prefix is an order id (base 32, `-g<n>`), hex and dashes: nothing LIKE reads as a wildcard
      const earlier = await this.db.selectFrom('refunds').select('refund_id').where('refund_id', 'like', `${this.prefixOf(orderId)}%`).execute();
      if (earlier.some((row) => row.refund_id !== this.idFor(orderId))) throw new IdempotencyConflict();
    }
  }
}
