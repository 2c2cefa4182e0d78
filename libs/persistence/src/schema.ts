import type { SkuOrderType } from '@orders/domain';
import type { ColumnType, Generated, GeneratedAlways, Insertable, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | undefined, never>;
type UpdatedAt = ColumnType<Date, Date | undefined, Date>;

export interface SkusTable {
  sku_id: string;
  title: string;
  price_cents: number;
  merchant_id: string;
  channel: 'self' | 'third_party';
  warehouse_id: string;
  deduction: 'placement' | 'payment';
  /** The sellable quantity last set by an operator; the ledger holds every movement since. */
  stock: number;
  flash_price_cents: number | null;
  flash_starts_at: Date | null;
  flash_ends_at: Date | null;
  flash_per_user_limit: number | null;
  /** How many buckets (Redis groups) the stock is split into; 1 for most SKUs. */
  stock_buckets: ColumnType<number, number | undefined, number>;
  /** The type of the orders that sell it; 'standard' for every SKU created before it was kept. */
  order_type: ColumnType<SkuOrderType, SkuOrderType | undefined, SkuOrderType>;
  /** Since when the shop has it off sale (checkouts refused); NULL: on sale. */
  off_sale_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/**
 * Every movement of sellable stock, signed from the point of view of "available":
 * an operator's adjustment, a reservation (-), its release (+), a restock after a return (+).
 * `commit` rows (reserved -> sold) carry qty 0 for available and say which order sold the unit.
 * (sku_id, kind, ref) is unique so a re-delivered job cannot write a movement twice.
 */
export interface StockLedgerTable {
  id: Generated<number>;
  sku_id: string;
  kind: 'adjust' | 'reserve' | 'release' | 'commit' | 'restock';
  ref: string;
  order_id: string | null;
  qty: number;
  reason: string;
  /** MySQL's time of the insert, never given: the stock check's fold trusts it (StockLedgerRepository.foldSettled) */
  created_at: ColumnType<Date, never, never>;
}

/** Per SKU, the sums of the ledger's movements settled at or below `stock_ledger_settled_through` (StockLedgerRepository.foldSettled). */
export interface StockLedgerSettledTable {
  sku_id: string;
  available: number;
  sold: number;
}

/** One row (id 1): the ledger id `stock_ledger_settled` sums up to. */
export interface StockLedgerSettledThroughTable {
  id: number;
  ledger_id: number;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** Ledger rows at or below the settled id whose reservation was still open (neither released nor committed) when they were folded. */
export interface StockLedgerUnsettledTable {
  ledger_id: number;
}

export interface OrdersTable {
  order_id: string;
  parent_order_id: string | null;
  type: string;
  status: string;
  version: number;
  user_id: string;
  channel: string | null;
  subtotal_cents: number;
  discount_cents: number;
  shipping_cents: number;
  payable_cents: number;
  refunded_cents: number;
  /** JSON text: MariaDB's JSON is LONGTEXT, so it is read and written as a string. null: placed without one, as only an order that ships nothing (virtual) is. */
  address: string | null;
  coupon_code: string | null;
  accepted_at: Date;
  payment_deadline: Date;
  /** presale: when the balance is due (set when the deposit is paid) */
  balance_deadline: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when the warehouse first refused a change of its parcel as too late (the parcel had left): counted once per parcel */
  change_refused_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when the warehouse was asked to take the order, its hand-over not recorded yet: it may hold the parcel since (null: never asked, or only in vain) */
  handover_asked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** an imported order's channel and the id it has there; null for this shop's own orders */
  source_channel: ColumnType<string | null, string | null | undefined, never>;
  external_order_id: ColumnType<string | null, string | null | undefined, never>;
  /** JSON AppliedBenefits: the member level, promotions and coupon the order used; null before pricing rules existed */
  benefits: ColumnType<string | null, string | null | undefined, string | null>;
  /** the buyer's Idempotency-Key and its body's hash, for the stock repair to write the key's record again after Redis lost it; null for an imported order, and one accepted before they were kept */
  idempotency_key: ColumnType<string | null, string | null | undefined, never>;
  checkout_body_hash: ColumnType<string | null, string | null | undefined, never>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface OrderItemsTable {
  order_id: string;
  line_no: number;
  sku_id: string;
  title: string;
  merchant_id: string;
  channel: string;
  warehouse_id: string;
  deduction: string;
  qty: number;
  list_price_cents: number;
  unit_price_cents: number;
  discount_cents: number;
  payable_cents: number;
  refunded_qty: number;
  refunded_cents: number;
  /** the line's share of the order's shipping (allocated when the order is split) */
  shipping_cents: ColumnType<number, number | undefined, number>;
  /** JSON DiscountShare[]: where each cent of the line's discount came from */
  discounts: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface OrderHistoryTable {
  id: Generated<number>;
  order_id: string;
  version: number;
  from_status: string | null;
  action: string;
  to_status: string;
  actor: string;
  detail: string | null;
  at: Date;
  /** null until the outbox publisher has put the row on the order-event stream */
  published_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface WebhooksTable {
  webhook_id: string;
  url: string;
  secret: string;
  description: string | null;
  stream_cursor: string;
  created_at: Date;
}

export interface WebhookDeliveriesTable {
  delivery_id: Generated<number>;
  webhook_id: string;
  first_event_id: number;
  last_event_id: number;
  event_count: number;
  attempt: number;
  outcome: 'delivered' | 'failed';
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: Date;
}

export interface PaymentsTable {
  payment_id: string;
  order_id: string;
  /** 'full', or a presale's 'deposit' / 'balance' */
  purpose: ColumnType<string, string | undefined, string>;
  attempt: ColumnType<number, number | undefined, number>;
  method: string;
  amount_cents: number;
  status: string;
  transaction_id: string | null;
  paid_at: Date | null;
  /** set while a payment taken after its order could take it waits to go back whole (settlePayment's refundDue), cleared once its refund is recorded */
  refund_due_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when a request for it was last sent to the payment system (MySQL's clock), set before it goes: it may have taken the money from then on, answered or not; null: never sent */
  requested_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when a request for it was first sent to the payment system (PAYMENT_CONFIRMATION_GIVE_UP_MS runs from then); null: never sent, or sent before this column */
  first_requested_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when the payment system, looked up, last answered it had not decided it yet (PROCESSING); null: never found so */
  undecided_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface ShipmentsTable {
  shipment_id: string;
  order_id: string;
  warehouse_id: string;
  tracking_no: string | null;
  status: string;
  shipped_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  delivered_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface RefundsTable {
  refund_id: string;
  order_id: string;
  kind: 'refund' | 'return';
  status: string;
  version: number;
  reason: string;
  amount_cents: number;
  /** JSON [{ lineNo, skuId, qty, cents }] */
  items: string;
  /** the one payment a refund order from before refund_parts went back to; its parts say where the money goes now */
  payment_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** JSON [{ from, to, at, actor }]: every status the refund took; null for whole-payment refunds */
  history: ColumnType<string | null, string | null | undefined, string | null>;
  /**
   * the ledger's reason for restocking the units, while they wait in a parcel the warehouse holds
   * until it takes them out (RefundRepository.releaseHeldRestock); null: restocked, or none to restock
   */
  restock_held_reason: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

/**
 * Where a refund order's money goes back to: one part per payment it draws from, each
 * sent to the payment system under its own id (the first part under the refund's id,
 * the next ones `<refundId>-2`, ...) and confirmed by its own signed callback.
 */
export interface RefundPartsTable {
  part_id: string;
  refund_id: string;
  payment_id: string;
  amount_cents: number;
  /**
   * PENDING (due), SENT (accepted by the payment system), SUCCEEDED (confirmed by its callback),
   * FAILED (it could not pay it back), SETTLED_BY_HAND (paid back another way, an admin said),
   * ASKED_AGAIN (FAILED, then asked for again under the part `asked_again_as`: owed by that one)
   */
  status: string;
  /** how a part SETTLED_BY_HAND was paid back (a bank transfer's reference), as the admin gave it */
  settled_reference: ColumnType<string | null, string | null | undefined, string | null>;
  /** a part ASKED_AGAIN: the part its money was asked for again under */
  asked_again_as: ColumnType<string | null, string | null | undefined, string | null>;
  /** when the part was first sent to the payment system (REFUND_CONFIRMATION_GIVE_UP_MS runs from then); null before, and for one sent before this column */
  sent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** when the payment system reported the part paid once it owed nothing any more (SETTLED_BY_HAND, ASKED_AGAIN): paid back twice */
  paid_after_owed_elsewhere_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface PromotionsTable {
  promotion_id: string;
  title: string;
  threshold_cents: number;
  off_cents: number;
  /** JSON string[]; null: every SKU */
  sku_ids: string | null;
  starts_at: Date;
  ends_at: Date;
  created_at: CreatedAt;
}

export interface CouponsTable {
  code: string;
  kind: 'percent' | 'fixed';
  percent_off: number;
  off_cents: number;
  min_spend_cents: number;
  per_buyer_limit: number;
  /** at most this many orders hold a use at once; 0: no limit */
  total_limit: ColumnType<number, number | undefined, number>;
  starts_at: Date;
  ends_at: Date;
  created_at: CreatedAt;
}

export interface CouponRedemptionsTable {
  code: string;
  order_id: string;
  user_id: string;
  status: 'used' | 'restored';
  at: Date;
  /** which of the buyer's uses it is, 1 to the coupon's per-buyer limit (null on a use given back before uses were numbered) */
  use_no: number | null;
  /** use_no while the use is 'used', else null: unique per coupon and buyer */
  held_use_no: GeneratedAlways<number | null>;
}

export interface MemberLevelsTable {
  level: string;
  discount_percent: number;
  free_shipping: boolean;
}

export interface MembersTable {
  user_id: string;
  level: string;
}

export interface WarehouseShippingTable {
  warehouse_id: string;
  fee_cents: number;
}

/** One value a member level had, from `effective_from` until the next row of the level. */
export interface MemberLevelHistoryTable {
  change_id: Generated<number>;
  level: string;
  discount_percent: number;
  free_shipping: boolean;
  effective_from: Date;
}

/** The level a buyer had from `effective_from` until the buyer's next row. */
export interface MemberHistoryTable {
  change_id: Generated<number>;
  user_id: string;
  level: string;
  effective_from: Date;
}

/** A warehouse's shipping fee from `effective_from` until the warehouse's next row. */
export interface ShippingFeeHistoryTable {
  change_id: Generated<number>;
  warehouse_id: string;
  fee_cents: number;
  effective_from: Date;
}

/** Its one row (id 1) counts the changes of the pricing rules: migration 0029. */
export interface PricingRulesVersionTable {
  id: number;
  version: number;
  /** promotions ended early (migration 0037) */
  promotion_ends: ColumnType<number, number | undefined, number>;
}

/** The Idempotency-Key of a refund (return) request: one body per order, kind, caller and key. */
export interface RefundKeysTable {
  /** the order the request named (a split order's parent, or one of its children) */
  order_id: string;
  kind: 'refund' | 'return';
  /** `<role>:<sub>`: keys are the caller's, as checkout's are the buyer's */
  caller: string;
  idempotency_key: string;
  /** sha256 of the request's reason and units */
  fingerprint: string;
  created_at: Date;
}

export interface Database {
  skus: SkusTable;
  stock_ledger: StockLedgerTable;
  stock_ledger_settled: StockLedgerSettledTable;
  stock_ledger_settled_through: StockLedgerSettledThroughTable;
  stock_ledger_unsettled: StockLedgerUnsettledTable;
  orders: OrdersTable;
  order_items: OrderItemsTable;
  order_history: OrderHistoryTable;
  payments: PaymentsTable;
  shipments: ShipmentsTable;
  refunds: RefundsTable;
  refund_parts: RefundPartsTable;
  refund_keys: RefundKeysTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  promotions: PromotionsTable;
  coupons: CouponsTable;
  coupon_redemptions: CouponRedemptionsTable;
  member_levels: MemberLevelsTable;
  members: MembersTable;
  warehouse_shipping: WarehouseShippingTable;
  member_level_history: MemberLevelHistoryTable;
  member_history: MemberHistoryTable;
  shipping_fee_history: ShippingFeeHistoryTable;
  pricing_rules_version: PricingRulesVersionTable;
}

export type SkuRow = Selectable<SkusTable>;
export type OrderRow = Selectable<OrdersTable>;
export type OrderItemRow = Selectable<OrderItemsTable>;
export type OrderHistoryRow = Selectable<OrderHistoryTable>;
export type NewLedgerEntry = Insertable<StockLedgerTable>;
export type PaymentRow = Selectable<PaymentsTable>;
export type ShipmentRow = Selectable<ShipmentsTable>;
export type WebhookRow = Selectable<WebhooksTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
