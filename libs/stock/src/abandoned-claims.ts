import type { Inventory } from './inventory.js';
import { mastersOf } from './redis-connection.js';
import { runStockScript, type RedisClient } from './stock-scripts.js';

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

/** A claim (claimCheckout-7+c.lua's hash) whose requests are gone by its times, and the orders that took a use under it. */
interface GoneClaim {
  /** the claim's own key */
  key: string;
  userId: string;
  idempotencyKey: string;
  cartGroup: string;
  /** 'l': when a request last took it up, the abandonment's guard against one taking it up since */
  takenUpAt: number;
  orderIds: string[];
}

/** Keys one SCAN call looks at, and claims one read of the index takes: those found are read in one pipeline. */
const READ_AT_ONCE = 1000;

/**
 * How often a buyers' group is also scanned for claims, beside the index of those holding coupon
 * uses (StockKeys.claimsHoldingCoupons): it finds the claims an api older than the index made during
 * a rolling upgrade. Once an hour across every worker's stock check and `npm run reconcile`
 * (StockKeys.claimsScanned), because the SCAN reads every order's record too: with 100,000 of them it
 * took 2.0 s, 1.9 s of a worker's CPU and ~0.7 s of Redis's (2026-12-07), where a read of the index
 * whose claims were judged took 0.2 ms.
 */
const CLAIMS_SCANNED_EVERY_MS = 3600_000;

/** Claims read at once, as abandonAmong judged them. */
interface Judged {
  abandoned: AbandonedClaim[];
  /** the keys of claims whose requests may still be under way (or took them up since), for a later check to judge again */
  undecided: Set<string>;
}

/**
 * The claims of Idempotency-Keys that checkouts of SKUs split into buckets make in their buyer's
 * own group (claimCheckout-7+c.lua), left behind by an api process killed between a request's
 * claim and its reservation: each holds the buyer's coupon use for an order that never was. The
 * checkout abandons one only when the buyer retries under the same key; the stock check, every
 * run, abandons them all here, through the same script and on the same judgement: nobody took
 * it up for `Inventory.claimAbandonment().afterMs`, it was made within `madeWithinMs` (an order
 * accepted under it would still be recorded), and the cart's group, read after the claim, has no
 * order under the key, nor MySQL a coupon use of an order of the claim. abandonClaim-3+2h.lua
 * does nothing when a request took it up since.
 *
 * Found in the index of claims holding coupon uses that the claim script keeps, each judged once
 * its requests are settled and then taken out of it (forgetClaims-1.lua): a check reads the claims
 * made since the last one and those still under way, not the sale's every order. A claim without
 * a use holds nothing to give back; the buyer's retry under its key abandons it. Once an hour, SCAN
 * over a buyers' group's idempotency keys on every master also finds claims an older api made
 * without indexing them. An order's record in the same keyspace has no cart group ('g'), and is
 * passed over.
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
      abandoned.push(...(await this.abandonIndexed(group)));
      // the first check to find the group's hour over scans it; a scan cut short waits for the next hour
      if ((await this.deps.redis.set(keys.claimsScanned(group), '1', 'PX', CLAIMS_SCANNED_EVERY_MS, 'NX')) === 'OK') abandoned.push(...(await this.abandonScanned(group)));
    }
    return abandoned;
  }

  /** The group's claims holding coupon uses, in pages; each one judged for good leaves the index. */
  private async abandonIndexed(group: string): Promise<AbandonedClaim[]> {
    const index = this.deps.inventory.keys.claimsHoldingCoupons(group);
    const abandoned: AbandonedClaim[] = [];
    // past the claims a page left in the index: those still undecided, and those scored anew meanwhile
    let kept = 0;
    for (;;) {
      const page = await this.deps.redis.zrange(index, kept, kept + READ_AT_ONCE - 1, 'WITHSCORES');
      const claims = page.filter((_, i) => i % 2 === 0);
      if (claims.length === 0) break;
      const judged = await this.abandonAmong(this.deps.redis, group, claims);
      abandoned.push(...judged.abandoned);
      const settled = claims.flatMap((claim, i) => (judged.undecided.has(claim) ? [] : [claim, page[2 * i + 1]!]));
      const forgotten = settled.length === 0 ? 0 : await runStockScript(this.deps.redis, 'forgetClaims', [index], settled);
      kept += claims.length - forgotten;
      if (claims.length < READ_AT_ONCE) break;
    }
    return abandoned;
  }

  /** Every idempotency key of the group, on every master: one holds the group's slot, which one is the cluster's to say, and may change. */
  private async abandonScanned(group: string): Promise<AbandonedClaim[]> {
    const pattern = this.deps.inventory.keys.idempotencyPattern(group);
    const abandoned: AbandonedClaim[] = [];
    for (const node of mastersOf(this.deps.redis)) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', READ_AT_ONCE);
        cursor = next;
        if (found.length > 0) abandoned.push(...(await this.abandonAmong(node, group, found)).abandoned);
      } while (cursor !== '0');
    }
    return abandoned;
  }

  private async abandonAmong(node: RedisClient, group: string, found: readonly string[]): Promise<Judged> {
    const { gone, undecided } = await this.goneClaims(node, group, found);
    const unrecorded = await this.unaccepted(await this.withoutOrder(gone));
    if (unrecorded.length === 0) return { abandoned: [], undecided };
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
      const { key, userId, idempotencyKey, cartGroup, takenUpAt, orderIds } = claim;
      if (await this.deps.inventory.abandonClaim({ userId, idempotencyKey, couponCode: couponCode ?? '' }, takenUpAt, orderIds)) {
        abandoned.push({ userId, idempotencyKey, cartGroup, couponCode, orderIds });
      } else {
        undecided.add(key);
      }
    }
    return { abandoned, undecided };
  }

  /**
   * The claims among `found` whose requests are gone by their times, read with Redis's clock (the
   * one that wrote them), and those whose requests may still be under way.
   */
  private async goneClaims(node: RedisClient, group: string, found: readonly string[]): Promise<{ gone: GoneClaim[]; undecided: Set<string> }> {
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
    const undecided = new Set<string>();
    found.forEach((key, i) => {
      const { g: cartGroup, u: userId, f: claimedAt, l: takenUpAt, ...fields } = replies[i] as Record<string, string>;
      // an order's record (no cart group), gone since it was found, or a claim made before claims kept their times
      if (cartGroup === undefined || userId === undefined || claimedAt === undefined || takenUpAt === undefined) return;
      if (now - Number(claimedAt) >= madeWithinMs) return;
      if (now - Number(takenUpAt) < afterMs) {
        undecided.add(key);
        return;
      }
      // the key after the buyer's id; one whose buyer's own group is another is not theirs
      const idempotencyKey = keys.groupOf(userId) === group ? keys.idempotencyKeyOf(key, group, userId) : null;
      if (idempotencyKey === null) return;
      const orderIds = Object.keys(fields)
        .filter((field) => field.startsWith('c:'))
        .map((field) => field.slice(2));
      gone.push({ key, userId, idempotencyKey, cartGroup, takenUpAt: Number(takenUpAt), orderIds });
    });
    return { gone, undecided };
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
