import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

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
  created_at: CreatedAt;
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
  /** JSON text: MariaDB's JSON is LONGTEXT, so it is read and written as a string. */
  address: string;
  coupon_code: string | null;
  accepted_at: Date;
  payment_deadline: Date;
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
}

export interface PaymentsTable {
  payment_id: string;
  order_id: string;
  method: string;
  amount_cents: number;
  status: string;
  transaction_id: string | null;
  paid_at: Date | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface ShipmentsTable {
  shipment_id: string;
  order_id: string;
  warehouse_id: string;
  tracking_no: string | null;
  status: string;
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
  items: string;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface Database {
  skus: SkusTable;
  stock_ledger: StockLedgerTable;
  orders: OrdersTable;
  order_items: OrderItemsTable;
  order_history: OrderHistoryTable;
  payments: PaymentsTable;
  shipments: ShipmentsTable;
  refunds: RefundsTable;
}

export type SkuRow = Selectable<SkusTable>;
export type OrderRow = Selectable<OrdersTable>;
export type OrderItemRow = Selectable<OrderItemsTable>;
export type OrderHistoryRow = Selectable<OrderHistoryTable>;
export type NewLedgerEntry = Insertable<StockLedgerTable>;
