import { createHash } from 'node:crypto';
import { IdempotencyConflict, StaleOrderVersion } from '@orders/domain';
import { RefundRepository, refundIdFor, type Database, type OrderDb, type RefundKey } from '@orders/persistence';
import type { Transaction } from 'kysely';
import { optionalIdempotencyKey } from './idempotency-keys.js';
import type { Principal } from './plugins/auth.js';

/** The optional Idempotency-Key header of the refunds and returns routes, as checkout's. */
export const idempotencyKeyHeaders = optionalIdempotencyKey(
  'the caller’s own key on this order: the same key and body answer the same refund (return), another body 422 IDEMPOTENCY_CONFLICT',
);

export type RequestedUnits = ReadonlyArray<{ skuId: string; qty: number }> | 'rest';

/** The units a refund (return) asks for as one string, in any order they were listed: part of its id. */
export function unitsKey(items: RequestedUnits): string {
  return items === 'rest' ? 'rest' : items.map((i) => `${i.skuId}x${i.qty}`).sort().join(',');
}

/**
 * Refunds and returns asked for under an Idempotency-Key, which is the caller's on the order
 * it names (as checkout's keys are the buyer's). The key is taken, with the body's
 * fingerprint, in the transaction that opens the refunds: of two requests racing with one
 * key, the second finds it taken (or clashes with it) and answers the first's refunds or
 * 422. Each refund's id is its order part's, the key's and the body's, so a repeat finds
 * what it opened.
 */
export class KeyedRefunds {
  private readonly refunds: RefundRepository;
  private readonly scope: RefundKey;
  private readonly fingerprint: string;

  constructor(db: OrderDb, scope: { orderId: string; kind: 'refund' | 'return'; caller: Principal; key: string }, request: { reason: string; items: RequestedUnits }) {
    this.refunds = new RefundRepository(db);
    this.scope = { orderId: scope.orderId, kind: scope.kind, caller: `${scope.caller.role}:${scope.caller.sub}`, key: scope.key };
    this.fingerprint = createHash('sha256').update(`${request.reason}\u0000${unitsKey(request.items)}`).digest('hex');
  }

  /** The id of the refund (return) of one order part under this key and body: a lookup by it never finds another body's. */
  idFor(partOrderId: string): string {
    const { orderId, kind, caller, key } = this.scope;
    return refundIdFor(partOrderId, [kind, 'key', orderId, caller, key, this.fingerprint]);
  }

  /** 422 IDEMPOTENCY_CONFLICT when another body took the key. */
  async refuseOtherBodies(): Promise<void> {
    const earlier = await this.refunds.keyFingerprint(this.scope);
    if (earlier !== null && earlier !== this.fingerprint) throw new IdempotencyConflict();
  }

  /**
   * Takes the key in the transaction opening the refunds. When a request took it since this
   * one looked, StaleOrderVersion rolls this one back and moveParts asks again: the winner's
   * body is refused then (refuseOtherBodies), the same body finds the winner's refunds.
   */
  async take(trx: Transaction<Database>, at: Date): Promise<void> {
    if (!(await RefundRepository.takeKey(trx, this.scope, this.fingerprint, at))) throw new StaleOrderVersion(this.scope.orderId);
  }
}
