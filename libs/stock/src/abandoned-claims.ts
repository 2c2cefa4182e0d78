import type { Redis } from 'ioredis';
import type { Inventory } from './inventory.js';
import { mastersOf } from './redis-connection.js';
import type { RedisClient } from './stock-scripts.js';

/** A claim of an Idempotency-Key the stock check abandoned, as its log line names it. */
export interface AbandonedClaim {
  userId: string;
  idempotencyKey: string;
  /** the group the cart would have run in (a bucket's) */
  cartGroup: string;
  /** the coupon a use of which each of `orderIds` held, given back now; null when none held one */
  couponCode: string | null;
  /** the orders, never accepted, that took a coupon use under the claim */
  orderIds: string[];
}

/** A claim (claimCheckout-6+c.lua's hash) whose requests are gone by its times, and the orders that took a use under it. */
interface GoneClaim {
  userId: string;
  idempotencyKey: string;
  cartGroup: string;
  /** 'l': when a request last took it up, the abandonment's guard against one taking it up since */
  takenUpAt: number;
  orderIds: string[];
}

/** Keys one SCAN call looks at: those found are read in one pipeline. */
const SCAN_COUNT = 1000;

/**
 * The claims of Idempotency-Keys that checkouts of SKUs split into buckets make in their buyer's
 * own group (claimCheckout-6+c.lua), left behind by an api process killed between a request's
 * claim and its reservation: each holds the buyer's coupon use for an order that never was. The
 * checkout abandons one only when the buyer retries under the same key; the stock check, every
 * run, abandons them all here, through the same script and on the same judgement: nobody took
 * it up for `Inventory.claimAbandonment().afterMs`, it was made within `madeWithinMs` (an order
 * accepted under it would still be recorded), and the cart's group, read after the claim, has no
 * order under the key, nor MySQL a coupon use of an order of the claim. abandonClaim-3+2h.lua
 * does nothing when a request took it up since.
 *
 * Found by SCAN over the buyers' groups' idempotency keys, on every master: the claim script
 * stays as it is, where an index of claims would cost each checkout one more write. An order's
 * record in the same keyspace has no cart group ('g'), and is passed over.
 */
export class AbandonedClaims {
  constructor(
    private readonly deps: {
      redis: RedisClient;
      inventory: Inventory;
      /** The orders among these whose coupon use MySQL records: accepted, whatever Redis still holds of them. */
      redeemedAmong: (orderIds: readonly string[]) => Promise<ReadonlySet<string>>;
    },
  ) {}

  /** Abandons every claim whose requests are gone with no order accepted under it; returns those abandoned now. */
  async abandonGone(): Promise<AbandonedClaim[]> {
    const { keys } = this.deps.inventory;
    const abandoned: AbandonedClaim[] = [];
    for (const group of keys.buyersGroups()) {
      // one master holds the group's slot; which one is the cluster's to say, and may change
      for (const node of mastersOf(this.deps.redis)) {
        let cursor = '0';
        do {
          const [next, found] = await node.scan(cursor, 'MATCH', keys.idempotencyPattern(group), 'COUNT', SCAN_COUNT);
          cursor = next;
          if (found.length > 0) abandoned.push(...(await this.abandonAmong(node, group, found)));
        } while (cursor !== '0');
      }
    }
    return abandoned;
  }

  private async abandonAmong(node: Redis, group: string, found: readonly string[]): Promise<AbandonedClaim[]> {
    const gone = await this.goneClaims(node, group, found);
    const unrecorded = await this.unaccepted(await this.withoutOrder(gone));
    if (unrecorded.length === 0) return [];
    const { keys } = this.deps.inventory;
    // the coupon of the uses each claim's orders took, in their holds (the claim names the orders alone)
    const holds = node.pipeline();
    for (const claim of unrecorded) for (const orderId of claim.orderIds) holds.hget(keys.couponHeld(group, orderId), 'c');
    const codes = ((await holds.exec()) ?? []).map(([error, code]) => {
      if (error) throw error;
      return code as string | null;
    });
    const abandoned: AbandonedClaim[] = [];
    for (const claim of unrecorded) {
      const couponCode = codes.splice(0, claim.orderIds.length).find((code) => code !== null) ?? null;
      const { userId, idempotencyKey, cartGroup, takenUpAt, orderIds } = claim;
      if (await this.deps.inventory.abandonClaim({ userId, idempotencyKey, couponCode: couponCode ?? '' }, takenUpAt, orderIds)) {
        abandoned.push({ userId, idempotencyKey, cartGroup, couponCode, orderIds });
      }
    }
    return abandoned;
  }

  /** The claims among `found` whose requests are gone by their times, read with Redis's clock (the one that wrote them). */
  private async goneClaims(node: Redis, group: string, found: readonly string[]): Promise<GoneClaim[]> {
    const { keys } = this.deps.inventory;
    const pipeline = node.pipeline();
    for (const key of found) pipeline.hgetall(key);
    pipeline.time();
    const replies = ((await pipeline.exec()) ?? []).map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
    const [seconds, micros] = replies.pop() as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const { afterMs, madeWithinMs } = this.deps.inventory.claimAbandonment();
    const gone: GoneClaim[] = [];
    found.forEach((key, i) => {
      const { g: cartGroup, u: userId, f: claimedAt, l: takenUpAt, ...fields } = replies[i] as Record<string, string>;
      // an order's record (no cart group), gone since the SCAN, or a claim made before claims kept their times
      if (cartGroup === undefined || userId === undefined || claimedAt === undefined || takenUpAt === undefined) return;
      if (now - Number(takenUpAt) < afterMs || now - Number(claimedAt) >= madeWithinMs) return;
      // the key after the buyer's id; one whose buyer's own group is another is not theirs
      const idempotencyKey = keys.groupOf(userId) === group ? keys.idempotencyKeyOf(key, group, userId) : null;
      if (idempotencyKey === null) return;
      const orderIds = Object.keys(fields)
        .filter((field) => field.startsWith('c:'))
        .map((field) => field.slice(2));
      gone.push({ userId, idempotencyKey, cartGroup, takenUpAt: Number(takenUpAt), orderIds });
    });
    return gone;
  }

  /**
   * The claims none of whose orders MySQL holds a coupon use of. An order's record under its
   * key in its cart's group (withoutOrder) is gone when a Redis Cluster node lost that group
   * (restarted empty, or failed over to a replica that was behind): the order was accepted all
   * the same, and its use is its own.
   */
  private async unaccepted(claims: readonly GoneClaim[]): Promise<GoneClaim[]> {
    const redeemed = await this.deps.redeemedAmong(claims.flatMap((claim) => claim.orderIds));
    return claims.filter((claim) => claim.orderIds.every((orderId) => !redeemed.has(orderId)));
  }

  /** The claims with no order recorded under their key in their cart's group, read after the claims: one pipeline per group. */
  private async withoutOrder(claims: readonly GoneClaim[]): Promise<GoneClaim[]> {
    const { keys } = this.deps.inventory;
    const byCartGroup = new Map<string, GoneClaim[]>();
    for (const claim of claims) byCartGroup.set(claim.cartGroup, [...(byCartGroup.get(claim.cartGroup) ?? []), claim]);
    const without: GoneClaim[] = [];
    for (const [cartGroup, inGroup] of byCartGroup) {
      const pipeline = this.deps.redis.pipeline();
      for (const claim of inGroup) pipeline.exists(keys.idempotency(cartGroup, claim.userId, claim.idempotencyKey));
      ((await pipeline.exec()) ?? []).forEach(([error, recorded], i) => {
        if (error) throw error;
        if (recorded === 0) without.push(inGroup[i]!);
      });
    }
    return without;
  }
}
