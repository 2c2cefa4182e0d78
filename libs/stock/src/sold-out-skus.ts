/**
 * SKUs a reservation found with nothing left, remembered for a moment. Most of a flash
 * sale's buyers arrive after it sold out; this lets the intake refuse them without running
 * the reservation script. Units that come back (a cancellation, an expired payment, a
 * stock set) make every process forget the SKU (`forget`, announced through Redis); a
 * SKU is forgotten after `forMs` anyway, in case an announcement is missed, and the next
 * checkout asks Redis again. Only the script reserves, so nothing is ever sold twice.
 *
 * A finding is remembered only if no announcement came between the read that found the SKU
 * empty and its answer: a reply on the command connection can arrive after the announcement
 * of units given back after it (on the subscriber's), and would mark the SKU sold out again
 * while units are on sale.
 */
export class SoldOutSkus {
  private readonly until = new Map<string, number>();
  private returns = 0;

  constructor(private readonly forMs: number) {}

  /** How many times units came back so far: taken before a read, handed to `remember` with its finding. */
  returnsHeard(): number {
    return this.returns;
  }

  /** The SKU found with nothing left by a read sent when `returnsHeardBefore` was `returnsHeard()`. */
  remember(skuId: string, nowMs: number, returnsHeardBefore: number): void {
    if (this.forMs > 0 && returnsHeardBefore === this.returns) this.until.set(skuId, nowMs + this.forMs);
  }

  forget(skuIds: Iterable<string>): void {
    this.returns += 1;
    for (const skuId of skuIds) this.until.delete(skuId);
  }

  /** The first SKU of these lines remembered as sold out at nowMs, if any. */
  firstSoldOut(lines: ReadonlyArray<{ skuId: string }>, nowMs: number): string | undefined {
    if (this.until.size === 0) return undefined;
    for (const { skuId } of lines) {
      const until = this.until.get(skuId);
      if (until === undefined) continue;
      if (until > nowMs) return skuId;
      this.until.delete(skuId);
    }
    return undefined;
  }
}
