import type { OrderStateMachine } from './order-process.js';

/**
 * A whole percentage of an amount, rounded down to the cent. In BigInt: cents × percent
 * passes 2^53 on large amounts, where a float would round the product and miss a cent.
 */
export function percentOf(cents: number, percent: number): number {
  return Number((BigInt(cents) * BigInt(percent)) / 100n);
}

/**
 * Splits `total` into parts proportional to `weights`, exactly to the cent, by the
 * largest-remainder method: every part is its proportional share rounded down, and the
 * cents left over go one each to the parts with the largest remainders (ties: the
 * earlier part). All weights zero: the parts are split evenly the same way.
 */
export function allocateByLargestRemainder(total: number, weights: readonly number[]): number[] {
  if (!Number.isSafeInteger(total) || total < 0) throw new Error(`cannot allocate ${total}: whole non-negative cents only`);
  if (weights.length === 0) {
    if (total !== 0) throw new Error(`cannot allocate ${total} cents to no parts`);
    return [];
  }
  if (weights.some((w) => !Number.isSafeInteger(w) || w < 0)) throw new Error('weights must be whole non-negative numbers');
  const sum = weights.reduce((a, b) => a + b, 0);
  const effective = sum === 0 ? weights.map(() => 1) : weights;
  const effectiveSum = sum === 0 ? weights.length : sum;
  // BigInt keeps total * weight exact however large the order
  const shares = effective.map((w) => {
    const numerator = BigInt(total) * BigInt(w);
    return { floor: Number(numerator / BigInt(effectiveSum)), remainder: numerator % BigInt(effectiveSum) };
  });
  let left = total - shares.reduce((a, s) => a + s.floor, 0);
  const order = shares.map((s, i) => ({ i, r: s.remainder })).sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  const parts = shares.map((s) => s.floor);
  for (const { i } of order) {
    if (left === 0) break;
    parts[i]! += 1;
    left -= 1;
  }
  return parts;
}

/** A line as splitting sees it: where it ships from and what it costs. */
export interface SplittableLine {
  lineNo: number;
  channel: string;
  merchantId: string;
  warehouseId: string;
  qty: number;
  unitPriceCents: number;
  discountCents: number;
  /** shipping already allocated to the line at pricing (and included in its payable) */
  shippingCents?: number;
  payableCents: number;
}

export interface SplitAmounts {
  subtotalCents: number;
  discountCents: number;
  shippingCents: number;
  payableCents: number;
}

export interface ChildPlan<L extends SplittableLine> {
  /** (channel, merchant, warehouse): what makes a child */
  key: { channel: string; merchantId: string; warehouseId: string };
  lines: Array<L & { discountCents: number; shippingCents: number; payableCents: number }>;
  amounts: SplitAmounts;
}

export const fulfilmentKey = (line: Pick<SplittableLine, 'channel' | 'merchantId' | 'warehouseId'>) =>
  `${line.channel}\u0000${line.merchantId}\u0000${line.warehouseId}`;

/** Whether an order's lines come from more than one (channel, merchant, warehouse). */
export function needsSplit(lines: readonly Pick<SplittableLine, 'channel' | 'merchantId' | 'warehouseId'>[]): boolean {
  return new Set(lines.map(fulfilmentKey)).size > 1;
}

/**
 * Plans the child orders of a paid order: one per (channel, merchant, warehouse), in the
 * order the groups first appear. Whatever of the order's discount and shipping is not
 * on its lines yet (pricing allocates both; an imported order's shipping is only an
 * order total) is allocated to lines in proportion to what each line pays, by largest
 * remainder, and children sum their lines: every child and every line is exact to the
 * cent, and the children add up to the parent.
 */
export function planSplit<L extends SplittableLine>(order: SplitAmounts, lines: readonly L[]): ChildPlan<L>[] {
  const lineDiscounts = lines.reduce((sum, line) => sum + line.discountCents, 0);
  const lineShipping = lines.reduce((sum, line) => sum + (line.shippingCents ?? 0), 0);
  const orderDiscount = order.discountCents - lineDiscounts;
  const orderShipping = order.shippingCents - lineShipping;
  if (orderDiscount < 0) throw new Error('the order discount is smaller than its lines’ discounts');
  if (orderShipping < 0) throw new Error('the order shipping is smaller than its lines’ shipping');
  const weights = lines.map((line) => line.payableCents);
  const extraDiscount = allocateByLargestRemainder(orderDiscount, weights);
  const shipping = allocateByLargestRemainder(orderShipping, weights);
  const groups = new Map<string, ChildPlan<L>>();
  lines.forEach((line, i) => {
    const key = fulfilmentKey(line);
    let child = groups.get(key);
    if (!child) {
      child = {
        key: { channel: line.channel, merchantId: line.merchantId, warehouseId: line.warehouseId },
        lines: [],
        amounts: { subtotalCents: 0, discountCents: 0, shippingCents: 0, payableCents: 0 },
      };
      groups.set(key, child);
    }
    const discountCents = line.discountCents + extraDiscount[i]!;
    const shippingCents = (line.shippingCents ?? 0) + shipping[i]!;
    const subtotal = line.unitPriceCents * line.qty;
    const payableCents = line.payableCents - extraDiscount[i]! + shipping[i]!;
    child.lines.push({ ...line, discountCents, shippingCents, payableCents });
    child.amounts.subtotalCents += subtotal;
    child.amounts.discountCents += discountCents;
    child.amounts.shippingCents += shippingCents;
    child.amounts.payableCents += payableCents;
  });
  return [...groups.values()];
}

/**
 * A split parent's status from its children's. The parent closes only once every child
 * has: while a child is in after-sales (refunding, a return under way) the parent shows
 * that child's status (the first such child), so money still owed never reads as closed;
 * otherwise it is the least advanced open child on the forward life (SHIPPED once every
 * child has shipped), closed children not holding it back. Every child closed: REFUNDING
 * while `refundsOwed` (a refund of the order from before the split, or of a child, not paid
 * back yet: one the payment system declined, a received return's), as an unsplit order waits
 * for its last refund; then COMPLETED when any child completed, as an unsplit order with some
 * units refunded completes; else the first child's status (REFUNDED, RETURNED...), all of
 * which the buyer sees as closed.
 */
export function deriveParentStatus(machine: OrderStateMachine, childStatuses: readonly string[], refundsOwed = false): string {
  if (childStatuses.length === 0) throw new Error('a split order has children');
  const open = childStatuses.filter((status) => !machine.isFinal(status));
  if (open.length === 0 && refundsOwed) return 'REFUNDING';
  if (open.length === 0) return childStatuses.find((status) => machine.progress(status) >= 0) ?? childStatuses[0]!;
  const afterSales = open.find((status) => machine.progress(status) < 0);
  if (afterSales !== undefined) return afterSales;
  return open.reduce((least, status) => (machine.progress(status) < machine.progress(least) ? status : least));
}
