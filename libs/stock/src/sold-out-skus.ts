/**
 * SKUs a reservation found with nothing left, remembered for a moment. Most of a flash
 * sale's buyers arrive after it sold out; this lets the intake refuse them without running
 * the reservation script. Units that come back (a cancellation, an expired payment, a
 * stock set) make every process forget the SKU (`forget`, announced through Redis); a
 * SKU is forgotten after `forMs` anyway, in case an announcement is missed, and the next
 * checkout asks Redis again. Only the script reserves, so nothing is ever sold twice.
 */
export class SoldOutSkus {
  private readonly until = new Map<string, number>();

  constructor(private readonly forMs: number) {}

  remember(skuId: string, nowMs: number): void {
    if (this.forMs > 0) this.until.set(skuId, nowMs + this.forMs);
  }

  forget(skuIds: Iterable<string>): void {
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
