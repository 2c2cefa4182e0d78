import type { Sku } from './catalog.js';
import { DomainError } from './errors.js';
import { storableInstant } from './instants.js';
import type { Address } from './order.js';
import type { FiredTransition } from './order-process.js';
import type { OrderAmounts, PricedLine } from './pricing.js';
import { stateMachineFor } from './processes/index.js';

/** A line as another order system priced it: its prices are that system's, taken as they are. */
export interface ImportedLine {
  skuId: string;
  title: string;
  merchantId: string;
  warehouseId: string;
  channel: Sku['channel'];
  qty: number;
  unitPriceCents: number;
  discountCents: number;
}

/** An order taken by another business order system, as `POST /v1/admin/orders/import` receives it. */
export interface ImportedOrder {
  externalOrderId: string;
  userId: string;
  placedAt: string;
  status: string;
  items: ImportedLine[];
  shippingCents: number;
  address: Address;
}

export interface PlannedImport {
  order: ImportedOrder;
  lines: PricedLine[];
  amounts: OrderAmounts;
  /** the steps from ACCEPTED to the status the channel reports, fired by the channel as `system` */
  steps: FiredTransition[];
}

/** How far a channel's clock may run ahead of ours. */
const CHANNEL_CLOCK_SKEW_MS = 5 * 60_000;

export class InvalidImport extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(externalOrderId: string, problem: string) {
    super(`Imported order ${externalOrderId}: ${problem}`);
  }
}

/**
 * Checks one imported order and works out its rows: amounts from its own lines (a line's
 * discount never above the line), and the path through the `imported` table to the status
 * its channel reports. Throws InvalidImport naming the order and what is wrong, a placedAt
 * later than `now` (past a few minutes of clocks disagreeing) and a SKU on two lines among it
 * (an order holds one line per SKU, as a checkout merges a SKU's lines into one).
 *
 * An order still to be moved on holds one merchant's goods: an imported order is never split,
 * and a merchant moves only orders holding its own goods alone (one merchant's ship would mark
 * the other's goods shipped), so one holding several merchants' goods could never be shipped,
 * delivered or completed. Its channel sends each merchant's goods as an order of its own. So
 * with a warehouse's: the order has one parcel, and a warehouse picks only its own goods. One
 * that arrives closed (completed, cancelled) has nothing left to move and is taken as it is.
 */
export function planImport(order: ImportedOrder, now: Date): PlannedImport {
  const machine = stateMachineFor('imported');
  const steps = machine.pathTo(order.status, 'system');
  if (!steps || order.status === 'ACCEPTED') throw new InvalidImport(order.externalOrderId, `status '${order.status}' cannot be imported`);
  const holdersOf = (key: 'merchantId' | 'warehouseId') => [...new Set(order.items.map((item) => item[key]))].sort();
  const merchants = holdersOf('merchantId');
  if (merchants.length > 1 && !machine.isFinal(order.status)) {
    throw new InvalidImport(
      order.externalOrderId,
      `it holds the goods of merchants ${merchants.join(', ')}, and each merchant moves only orders holding its own goods alone, so no one could ship, deliver or complete it: send each merchant's goods as an order of its own`,
    );
  }
  const warehouses = holdersOf('warehouseId');
  if (warehouses.length > 1 && !machine.isFinal(order.status)) {
    throw new InvalidImport(
      order.externalOrderId,
      `its goods are at warehouses ${warehouses.join(', ')}, and an imported order has one parcel, from one warehouse, so the others' goods would never be shipped: send each warehouse's goods as an order of its own`,
    );
  }
  // a valid RFC 3339 time need not be a storable one (a leap second, an offset past year 9999); none was placed before 1970
  const placedAt = storableInstant(order.placedAt)?.getTime();
  if (placedAt === undefined || placedAt < 0) {
    throw new InvalidImport(order.externalOrderId, `placedAt ${order.placedAt} is not a time the order could have been placed at`);
  }
  if (placedAt > now.getTime() + CHANNEL_CLOCK_SKEW_MS) throw new InvalidImport(order.externalOrderId, `placedAt ${order.placedAt} is in the future`);
  const lineOfSku = new Map<string, number>();
  const lines = order.items.map((item, index): PricedLine => {
    const earlier = lineOfSku.get(item.skuId);
    if (earlier !== undefined) {
      throw new InvalidImport(
        order.externalOrderId,
        `SKU ${item.skuId} is on lines ${earlier} and ${index + 1}; an order holds one line per SKU (its refunds, returns and merchants name a line by its SKU): send them as one line`,
      );
    }
    lineOfSku.set(item.skuId, index + 1);
    const lineTotal = item.unitPriceCents * item.qty;
    if (item.discountCents > lineTotal) throw new InvalidImport(order.externalOrderId, `line ${index + 1} has a discount above its total`);
    return {
      lineNo: index + 1,
      skuId: item.skuId,
      title: item.title,
      merchantId: item.merchantId,
      channel: item.channel,
      warehouseId: item.warehouseId,
      deduction: 'placement',
      qty: item.qty,
      listPriceCents: item.unitPriceCents,
      unitPriceCents: item.unitPriceCents,
      discountCents: item.discountCents,
      // the channel's shipping is an order total: splitting allocates it
      shippingCents: 0,
      payableCents: lineTotal - item.discountCents,
      discounts: [],
    };
  });
  const subtotalCents = lines.reduce((sum, line) => sum + line.unitPriceCents * line.qty, 0);
  const discountCents = lines.reduce((sum, line) => sum + line.discountCents, 0);
  return {
    order,
    lines,
    amounts: { subtotalCents, discountCents, shippingCents: order.shippingCents, payableCents: subtotalCents - discountCents + order.shippingCents },
    steps,
  };
}
