import { randomUUID } from 'node:crypto';
import { Cluster, type ChainableCommander } from 'ioredis';
import {
  AddressRequired,
  BucketedSkuSoldAlone,
  CheckoutRefused,
  CouponNotValid,
  CouponAllTaken,
  CouponUsedUp,
  IdempotencyConflict,
  LimitExceeded,
  ORDER_TYPES,
  OrderTypeMismatch,
  OrderTypesMixed,
  OutOfStock,
  SALE_CHANGE_CUTOFF_MS,
  SaleAlreadyOpen,
  SaleEndTooClose,
  SaleNotActive,
  SkuOffSale,
  SkuStockHeld,
  firstOrderIdAt,
  isOffSale,
  uncoveredPaymentLine,
  UnknownSku,
  shipsParcels,
  type AcceptedOrder,
  type Deduction,
  type FlashSale,
  type OrderLineRequest,
  type OrderType,
  type Sku,
  type SkuOrderType,
} from '@orders/domain';
import { IsoTimestamps } from './iso-timestamps.js';
import type { SweepPage } from './sweep-pages.js';
import { BatchRefused, PipelinePerTurn, type BatchGuard } from './pipeline-per-turn.js';
import { SoldOutSkus } from './sold-out-skus.js';
import { COUPON_USES_KEPT_AFTER_END_MS, queueStockScript, runStockScript, type RedisClient, type StockScriptReply } from './stock-scripts.js';
import { MAX_STOCK_BUCKETS, StockKeys, splitStock } from './stock-keys.js';
import { RequestBudgetSpent, WindowCounters, type CappedCounter, type CheckoutCounters, type WindowCount } from './window-counters.js';
import { StockNotReplicated, pipelinedEach, pipelinedPerMaster } from './redis-connection.js';

export interface CheckoutTimeouts {
  standardPaymentTimeoutMs: number;
  flashSalePaymentTimeoutMs: number;
  idempotencyTtlMs: number;
  /**
   * How long after its deposit a presale's balance is due: its reservation is kept that much
   * longer, since the presale holds its units until the balance is paid or forfeited. 0 when
   * absent (an inventory that sells no presale).
   */
  presaleBalanceTimeoutMs?: number;
  /**
   * How long after a request last took up the claim of a key (a cart split into buckets,
   * claimCheckout-7+c.lua), with no order accepted under the key, the request may still be
   * under way: another request under the key is answered CheckoutInProgress meanwhile, and
   * after it the claim is abandoned (its request was killed before its reservation), its
   * coupon uses given back. 10 s when absent.
   */
  claimAbandonedAfterMs?: number;
}

/** The settings a checkout's reservation times itself by, as the config names them. */
export interface CheckoutTimeoutSettings {
  PAYMENT_TIMEOUT_MS: number;
  FLASH_SALE_PAYMENT_TIMEOUT_MS: number;
  IDEMPOTENCY_TTL_MS: number;
  PRESALE_BALANCE_TIMEOUT_MS: number;
  REDIS_COMMAND_TIMEOUT_MS: number;
}

export function checkoutTimeoutsOf(config: CheckoutTimeoutSettings): CheckoutTimeouts {
  return {
    standardPaymentTimeoutMs: config.PAYMENT_TIMEOUT_MS,
    flashSalePaymentTimeoutMs: config.FLASH_SALE_PAYMENT_TIMEOUT_MS,
    idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS,
    presaleBalanceTimeoutMs: config.PRESALE_BALANCE_TIMEOUT_MS,
    claimAbandonedAfterMs: CLAIM_SETTLES_WITHIN_COMMAND_TIMEOUTS * config.REDIS_COMMAND_TIMEOUT_MS,
  };
}

export interface ReserveStockRequest {
  /** The intake's id; an order that runs in a bucket other than 0 gets the bucket's suffix (StockKeys.orderIdInGroup). */
  orderId: string;
  userId: string;
  idempotencyKey: string;
  bodyHash: string;
  requestedType: OrderType | null;
  items: OrderLineRequest[];
  /** What the worker needs besides type and deadline, kept with the reservation for recovery. */
  payload: Pick<AcceptedOrder, 'address' | 'couponCode'>;
  /** The api host's time, which its sold-out memory keeps by; the scripts decide by Redis's clock. */
  now: Date;
  /** The buyer's request budget and checkout velocity, spent by this checkout; none when absent. */
  counters?: CheckoutCounters | null;
}

export interface Reservation {
  /** false when this is a replay of an earlier request with the same idempotency key. */
  created: boolean;
  order: AcceptedOrder;
}

export interface SkuStockRules {
  skuId: string;
  available: number;
  deduction: Deduction;
  saleStartsAt: Date | null;
  saleEndsAt: Date | null;
  perUserLimit: number;
  /** How many buckets the stock is split into (1: not split, the default). */
  buckets?: number;
  /** The type of the orders that sell it (standard, the default). */
  orderType?: SkuOrderType;
  /** Off sale in the catalog: the buckets the stock repair recreates sell nothing (putOffSale-1.lua). */
  offSale?: boolean;
}

/** A flash sale's rules as a SKU's Redis counters keep them (its price is the catalog's alone). */
export type SaleRules = Pick<FlashSale, 'startsAt' | 'endsAt' | 'perUserLimit'>;

/** A bucket's sale as its hash holds it: instants in ms, 0 for no sale (and no limit). */
export interface BucketSale {
  startsAt: number;
  endsAt: number;
  perUserLimit: number;
  /** the SKU is off sale in this bucket (putOffSale-1.lua) */
  offSale: boolean;
}

/** The catalog's sale (or none), and whether it has the SKU off sale, as a bucket holding them reads. */
export function bucketSaleOf(sale: SaleRules | null, offSale = false): BucketSale {
  return { startsAt: sale?.startsAt.getTime() ?? 0, endsAt: sale?.endsAt.getTime() ?? 0, perUserLimit: sale?.perUserLimit ?? 0, offSale };
}

/** A catalog SKU's rules as its Redis counters keep them (all but its stock). */
export function stockRulesOf(sku: Sku): Omit<SkuStockRules, 'available'> {
  return {
    skuId: sku.skuId,
    deduction: sku.deduction,
    saleStartsAt: sku.flashSale?.startsAt ?? null,
    saleEndsAt: sku.flashSale?.endsAt ?? null,
    perUserLimit: sku.flashSale?.perUserLimit ?? 0,
    buckets: sku.stockBuckets ?? 1,
    orderType: sku.orderType ?? 'standard',
    offSale: isOffSale(sku),
  };
}

/** What commitStock did: committed now, already before, no reservation, released (cancelled/expired), or a payment-time line's stock gone. */
export type CommitOutcome =
  | { status: 'committed' }
  | { status: 'already' }
  | { status: 'missing' }
  | { status: 'released' }
  | { status: 'gone'; skuId: string };

/** A persisted order's reservation as MySQL has it: what restoreReservation puts back. */
export interface PersistedReservation extends Pick<AcceptedOrder, 'orderId' | 'userId' | 'type' | 'address'> {
  lines: Array<OrderLineRequest & { deduction: Deduction }>;
  /** the coupon the order holds a use of (its redemption is still used), else null */
  couponCode: string | null;
  acceptedAt: Date;
  paymentDeadline: Date;
}

/** An order accepted under its buyer's Idempotency-Key, as MySQL has it: what restoreCheckoutKeys writes the key's record again from. */
export interface PersistedCheckoutKey extends Pick<AcceptedOrder, 'orderId' | 'userId' | 'type'> {
  idempotencyKey: string;
  bodyHash: string;
  acceptedAt: Date;
  paymentDeadline: Date;
}

export interface SkuStock {
  available: number;
  reserved: number;
  sold: number;
}

/** The counters of a SKU's stock hash, as SkuStock names them. */
export const SKU_COUNTERS = ['available', 'reserved', 'sold'] as const;

/**
 * The buyer whose per-buyer limit a restock gives its units back to, and the SKUs of the order it
 * gives back (those it bought in their flash sale with a limit): a paid order's cancellation, as
 * its coupon use goes back. Never a refund of lines or a return: those units stay counted.
 */
export interface BuyerLimit {
  userId: string;
  skuIds: readonly string[];
  /** When the order was accepted: its units go back to the count of the sale it was accepted in, never to a later sale's. */
  acceptedAt: Date;
}

/** Units moved from one bucket of a SKU to another, under an id that makes each side happen once. */
export interface StockTransfer {
  transferId: string;
  skuId: string;
  from: number;
  to: number;
  qty: number;
}

/**
 * A transfer as its giving side took it: `qty` is what was taken, `generation` the
 * giving bucket's stock generation then (how many times the merchant had set the
 * SKU's stock): its units are given only to a bucket of that generation.
 */
export interface TakenTransfer extends StockTransfer {
  generation: number;
}

/**
 * What the receiving side of a transfer did. `voided`: the units were taken before a
 * stock set that has reached the receiving bucket since; the set said what each
 * bucket holds, so they are given nowhere, ever. `waiting`: taken after a stock set
 * that has not reached the receiving bucket yet; nothing done, given after it. `lost`:
 * Redis lost the receiving bucket's counters; nothing done, given once the stock repair
 * has recreated it (the repair counts the units on their way meanwhile).
 */
export type GiveOutcome = 'given' | 'given-before' | 'voided' | 'waiting' | 'lost';

/** A transfer taken and not closed, with what its receiving side has done so far. */
export interface OpenTransfer extends TakenTransfer {
  state: 'taken' | 'given' | 'voided';
}

/**
 * A merchant's stock set as bucket 0 records it (startStockSet-2.lua), open from its start
 * until its MySQL side is done: the SKU's new stock, under the set's ledger reference, in the
 * SKU's stock generation it started.
 */
export interface StockSet {
  skuId: string;
  stock: number;
  ref: string;
  generation: number;
}

/** Another stock set of the SKU is open (it is finished first), or started since this one read the SKU. */
export class StockSetUnderWay extends Error {
  override readonly name = 'StockSetUnderWay';
  constructor(readonly skuId: string) {
    super(`another stock set of ${skuId} is under way`);
  }
}

/** The stock set was closed while it was being finished (done, or taken back, by another process): nothing to finish. */
export class StockSetClosed extends Error {
  override readonly name = 'StockSetClosed';
  constructor(readonly skuId: string) {
    super(`the open stock set of ${skuId} was closed meanwhile`);
  }
}

/**
 * Redis lost buckets of the SKU (no counters, or counters without its rules): a stock set
 * measured without what they held would leave those units in the ledger, and the stock repair
 * would put them back on sale on top of the set. Refused (an open set left waiting) until the
 * repair has recreated them.
 */
export class StockBucketLost extends Error {
  override readonly name = 'StockBucketLost';
  constructor(
    readonly skuId: string,
    readonly buckets: number[],
  ) {
    super(`Redis lost bucket(s) ${buckets.join(', ')} of ${skuId}: its stock cannot be set until the stock repair recreates them`);
  }
}

/** A reservation holding its order's stock: the order as the intake accepted it. */
interface StoredReservation {
  state: 'reserved';
  userId: string;
  type: OrderType;
  deadline: number;
  acceptedAt: number;
  payload: Pick<AcceptedOrder, 'address' | 'couponCode' | 'items' | 'idempotencyKey' | 'bodyHash'>;
}

/** A reservation committed or released: its record keeps its state alone to answer by (commitStock-1+n.lua, releaseStock-4+2n.lua). */
interface SettledReservation {
  state: 'committed' | 'released';
}

/** What claimCheckout-7+c.lua's code 0 says of the requests holding a claim, with no order accepted under the key. */
const CLAIM_HOLDERS_UNDER_WAY = 1;
const CLAIM_HOLDERS_GONE = 2;

/** What a cart running outside its buyer's own group claimed and took there (claimCheckout-7+c.lua), for its reservation to settle. */
interface CheckoutClaim {
  orderId: string;
  userId: string;
  idempotencyKey: string;
  couponCode: string;
  /** this request holds the key's claim (made it, or took it up): it lets go when the reservation is refused, and the claim goes once no request holds it */
  holdsClaim: boolean;
  /** a use of the coupon was taken for this order: given back unless the reservation accepts it */
  couponTaken: boolean;
  /** the orders other requests under the key took a use for (claimCheckout-7+c.lua's code 2): given back if this one's is accepted */
  otherHolders: string[];
}

/** The refusals of the rules that hold per buyer, as reserveStock-7+c+2n.lua and claimCheckout-7+c.lua both answer them; null for another code. */
function buyerRuleRefusal(code: number, couponCode: string, budgetMsLeft: number): Error | null {
  switch (code) {
    case -1:
      return new IdempotencyConflict();
    case -7:
      return new CouponNotValid(couponCode);
    case -8:
      return new CouponUsedUp(couponCode);
    case -13:
      return new CouponAllTaken(couponCode);
    case -9:
      return new RequestBudgetSpent(budgetMsLeft);
    case -10:
      return new CheckoutRefused('velocity');
    default:
      return null;
  }
}

function cappedCounters({ budget, velocity }: CheckoutCounters): CappedCounter[] {
  return velocity ? [budget, velocity] : [budget];
}

/** A correction's steps are remembered far longer than a connection stays away with their answers (correctBucket-2.lua). */
const CORRECTION_MARKER_TTL_MS = 24 * 3600 * 1000;
/** A restock reference is remembered far longer than any job retries or after-sales window. */
const RESTOCK_MARKER_TTL_MS = 90 * 24 * 3600 * 1000;
/**
 * How long after an order gave its units or coupon use back Redis can still tell it did (its
 * restock and given-back markers): a release asked for later could give them back twice, and is
 * not asked for (a cancel sent again to an order closed longer ago gives nothing back).
 */
export const RELEASES_REMEMBERED_MS = RESTOCK_MARKER_TTL_MS;
/** Whether a release done at `releasedAt` may be asked for again now: Redis still remembers it (RELEASES_REMEMBERED_MS). */
export function releaseRemembered(releasedAt: Date, now: Date): boolean {
  return now.getTime() - releasedAt.getTime() < RELEASES_REMEMBERED_MS;
}
/** How long a reservation record outlives its payment deadline, a presale's its balance timeout too (reserveStock-7+c+2n.lua's PEXPIREAT). */
const RESERVATION_KEPT_AFTER_DEADLINE_MS = 7 * 24 * 3600 * 1000;
/**
 * How long a released reservation record is kept (releaseStock-4+2n.lua): a release retried
 * soon (the payment deadline job of an order cancelled before it, a repeated cancel, a job
 * retried) finds it 'released'. Gone, it answers the same: a release finds no lines to give
 * back and the coupon's given-back marker decides on the use (releaseCoupon-4.lua); a commit
 * gets 'missing', which its callers take as they take 'released'.
 */
const RELEASED_RECORD_KEPT_MS = 24 * 3600 * 1000;
/**
 * How many REDIS_COMMAND_TIMEOUT_MS a request holding the claim of a key takes at most to settle
 * it: its claim, its reservation and the read after it are each answered or taken for lost
 * within one, and its claim settled with one more (claimCheckout-7+c.lua; `claimAbandonedAfterMs`).
 */
const CLAIM_SETTLES_WITHIN_COMMAND_TIMEOUTS = 5;
/** `claimAbandonedAfterMs` of an inventory told no command timeout: five of REDIS_COMMAND_TIMEOUT_MS's default. */
const CLAIM_ABANDONED_AFTER_MS = 10_000;
/**
 * How much longer than the idempotency record a claim of its key is kept (claimCheckout-7+c.lua):
 * the claim is made just before the reservation that writes the record, and while it lives no
 * other cart is accepted under the key.
 */
const CLAIM_OUTLIVES_RECORD_MS = 60_000;
/**
 * How long past its end the buyers' counts toward a flash sale's limit were kept before they went
 * with their sale (reserveStock-7+c+2n.lua): a sale a bucket had from then (no countsEndWithSale)
 * is over for good that long after its end (changeSale-1.lua).
 */
const OLDER_SALE_COUNTS_KEPT_MS = 24 * 3600 * 1000;
/**
 * How long an order's coupon given-back marker is kept: as long as its buyer's uses count (a day
 * past the coupon's end), or when that count is gone (Redis lost it, and the stock repair counts
 * it again without the use) this long, and never longer: as long as the restock markers, the
 * longest any later step of the order comes.
 */
const GIVEN_BACK_KEPT_AT_MOST_MS = RESTOCK_MARKER_TTL_MS;
/** How many orders of a window acceptedIn reads the lines of, per group, before it counts them all unread. */
const ACCEPTED_READ_AT_MOST = 10_000;
/** Reads sent in one pipeline by the repair's scans of many orders. */
const READS_PER_PIPELINE = 1000;
/** How far apart the clocks of the api hosts, the workers and Redis may be, at most, for what looks back over the reservations kept. */
const CLOCKS_APART_MS = 10 * 60_000;
/** Negated, far below any clock: a change of a SKU's sale undone with that as its cutoff passes every check of changeSale-1.lua. */
const UNDO_CUTOFF_MS = Number.MAX_SAFE_INTEGER;
/** A finished transfer's records are kept long past any retry of it. */
const TRANSFER_RECORD_TTL_MS = 7 * 24 * 3600 * 1000;
/** The receiving side's marker of a voided transfer, as giveStock-2.lua writes it. */
const VOIDED_MARKER = 'void';
/** The order types a cart may make without a delivery address, as reserveStock-7+c+2n.lua reads them (',virtual,'). */
const TYPES_SHIPPING_NOTHING = `,${ORDER_TYPES.filter((type) => !shipsParcels(type)).join(',')},`;
/** How ioredis rejects a command it sent whose answer did not come within its commandTimeout: it may still run, and be answered. */
const UNANSWERED = /^Command timed out/;
/** giveStock-2.lua's return codes. */
const GIVE_OUTCOMES: Partial<Record<number, GiveOutcome>> = { 1: 'given', 0: 'given-before', 2: 'voided', 3: 'waiting', [-1]: 'lost' };

/**
 * How many replicas must hold a turn's reservations before the intake answers (0: the
 * master alone). With `appendfsync everysec` a master whose host dies loses up to a second
 * of writes, 202s included; a replica that acknowledged them keeps them through a failover.
 */
export interface ReservationDurability {
  replicaAcks: number;
  timeoutMs: number;
  /**
   * The connection the writes that wait for replicas go on (the checkout's claims and
   * reservations, what settles them, a merchant's stock sets), and nothing else: while a replica
   * is away each WAIT holds its connection for `timeoutMs`, and order reads, sold-out answers,
   * request budgets and health checks on it would queue behind them. The inventory's own when absent.
   */
  connection?: RedisClient;
}

/** WAIT after each turn's reservations, on the same connection: fewer acknowledgements than asked fail the whole turn. */
function replicaAcknowledgement({ replicaAcks, timeoutMs }: ReservationDurability): BatchGuard {
  return {
    add: (pipeline) => pipeline.wait(replicaAcks, timeoutMs),
    failure: (acknowledged) =>
      Number(acknowledged) >= replicaAcks ? null : new ReservationNotReplicated(`${Number(acknowledged)} of ${replicaAcks} replicas acknowledged the reservations within ${timeoutMs} ms`),
  };
}

/** The reservation may not survive a failover of the Redis master: the buyer is told to retry with the same Idempotency-Key. */
export class ReservationNotReplicated extends Error {
  override readonly name = 'ReservationNotReplicated';
}

/**
 * Another request under the same Idempotency-Key and body holds its claim, with no order accepted
 * under it yet: this one's refusal (the coupon use, the checkout attempts that request took) may
 * not stand once that one settles. The buyer is told to retry with the same key: they get that
 * request's order, or are taken on their own merits.
 */
export class CheckoutInProgress extends Error {
  override readonly name = 'CheckoutInProgress';
  constructor() {
    super('A checkout under this Idempotency-Key is still in progress');
  }
}

/**
 * Redis is authoritative for sellable stock and reservations (DESIGN.md). This class is
 * what the api and workers hold; the scripts themselves live in src/lua.
 */
export class Inventory {
  readonly keys: StockKeys;
  /** Request budgets and checkout velocity: the checkout counts them with its reservation when it can. */
  readonly windowCounters: WindowCounters;
  private readonly pipelines: PipelinePerTurn;
  /**
   * Where the checkout's claims and reservations go (`ReservationDurability.connection`), and
   * what settles them after: a settlement sent on the connection of what it settles runs after it.
   * A merchant's stock set goes there too: its replica wait covers the writes of its connection only.
   */
  private readonly reserving: RedisClient;
  /** How many replicas must hold a write that takes units off sale before it counts as done; null: the master alone. */
  private readonly durability: ReservationDurability | null;
  /** Buckets per SKU as Redis has them: fixed when the SKU is created, so each process reads a SKU's once. */
  private readonly bucketCounts = new Map<string, number>();

  /** Reads of one turn, pipelined like the scripts but never waiting for replicas: they change nothing. */
  private readonly reads: PipelinePerTurn;
  private readonly soldOut: SoldOutSkus;
  /** The pub/sub channel of `announceReturned`. */
  private readonly stockReturned: string;
  /** One per kind of time a reservation answers with: each stays within its own second. */
  private readonly acceptedTimes = new IsoTimestamps();
  private readonly deadlineTimes = new IsoTimestamps();
  /** Settlements of unanswered commands that found the connection down, sent once it is back (`settleEvenIfAway`). */
  private readonly awaitingConnection: Array<() => Promise<void>> = [];
  private readonly limitGivenBackBy: (restock: { orderId: string; ref: string }) => Promise<BuyerLimit | null>;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    private readonly timeouts: CheckoutTimeouts,
    options: {
      durability?: ReservationDurability;
      /** How long a SKU found with nothing left answers OUT_OF_STOCK from memory (SOLD_OUT_MEMORY_MS; 0: never). */
      soldOutMemoryMs?: number;
      /**
       * Whose limit a restock gives back, as MySQL has it (`restockStock`); none when absent: an
       * inventory that restocks nothing, or only outside a flash sale.
       */
      limitGivenBackBy?: (restock: { orderId: string; ref: string }) => Promise<BuyerLimit | null>;
    } = {},
  ) {
    this.limitGivenBackBy = options.limitGivenBackBy ?? (async () => null);
    this.keys = new StockKeys(keyPrefix);
    this.stockReturned = `${keyPrefix}stock-returned`;
    const guarded = options.durability && options.durability.replicaAcks > 0 ? options.durability : null;
    this.durability = guarded;
    this.reserving = guarded?.connection ?? redis;
    this.pipelines = new PipelinePerTurn(this.reserving, guarded ? replicaAcknowledgement(guarded) : undefined);
    this.reads = new PipelinePerTurn(redis);
    this.windowCounters = new WindowCounters(redis);
    this.soldOut = new SoldOutSkus(options.soldOutMemoryMs ?? 0);
  }

  /**
   * Refuses a checkout of a SKU found with nothing left moments ago (`SoldOutSkus`), with
   * one read instead of the reservation script and before the request is hashed; the
   * buyer's budget and velocity are counted in the same script call when they are in the
   * read's slot group (`soldOutCheck-2+c.lua`: a 503's retry not counted as an attempt again), in the same turn when not. A buyer
   * whose Idempotency-Key is already recorded in their own group (or claimed there, for a
   * cart that runs in another) is let through: a retry of an accepted checkout gets its 202
   * again, a key reused with another cart its 422, both from the scripts. A SKU not split
   * into buckets is remembered when the script finds it empty; a bucketed one when its
   * rebalancer finds every bucket empty (`rememberSoldOut`), since one bucket's
   * OUT_OF_STOCK does not mean the others are empty.
   */
  async refuseIfSoldOut(userId: string, idempotencyKey: string, items: readonly OrderLineRequest[], now: Date, counters: CheckoutCounters | null = null): Promise<void> {
    const skuId = this.soldOut.firstSoldOut(items, now.getTime());
    if (skuId === undefined) return;
    // a cart refused whatever the stock (BucketedSkuSoldAlone) is refused as the reservation would
    await this.checkoutGroup(userId, items);
    const own = this.keys.groupOf(userId);
    const record = this.keys.idempotency(own, userId, idempotencyKey);
    const capped = counters && !counters.spent ? cappedCounters(counters) : [];
    let known: number;
    if (capped.length > 0 && capped.every((counter) => counter.slotGroup === own)) {
      // counted and read in one script, as the reservation script counts them: one command
      const [exists, ...counts] = await this.reads.send<StockScriptReply<'soldOutCheck'>>(own, (pipeline) =>
        queueStockScript(
          pipeline,
          'soldOutCheck',
          [record, this.keys.checkoutAttempt(own, userId, idempotencyKey), ...capped.map((counter) => counter.key)],
          capped.map((counter) => counter.windowMs),
        ),
      );
      known = exists!;
      this.refuseOverCounters(counters!, { count: counts[0]!, msLeft: counts[1]! }, known === 1 ? undefined : counts[2]);
    } else {
      // counters of another group in the same turn as the read: one round trip
      const [recorded, counted] = await Promise.all([this.keyRecorded(own, userId, idempotencyKey), capped.length > 0 ? this.countBeforehand(counters!) : null]);
      known = recorded ? 1 : 0;
      if (counted) this.refuseOverCounters(counters!, counted.budget, known === 1 ? undefined : counted.velocity?.count);
    }
    // a recorded key goes on to the reservation script, which does not count the spent counters again
    if (known === 0) throw new OutOfStock(skuId);
  }

  /**
   * Whether this buyer's Idempotency-Key is recorded: a checkout under it was accepted, or (a
   * cart running outside their own group claims the key there first) is under way.
   */
  async checkoutRecorded(userId: string, idempotencyKey: string): Promise<boolean> {
    return this.keyRecorded(this.keys.groupOf(userId), userId, idempotencyKey);
  }

  /** Whether the idempotency record of this buyer's key exists in its group (one read, sent with the turn's others). */
  private async keyRecorded(group: string, userId: string, idempotencyKey: string): Promise<boolean> {
    return (await this.reads.send<number>(group, (pipeline) => pipeline.exists(this.keys.idempotency(group, userId, idempotencyKey)))) === 1;
  }

  /** Taken before reading a SKU's buckets, handed to `rememberSoldOut` with what they held (`SoldOutSkus.returnsHeard`). */
  soldOutReturnsHeard(): number {
    return this.soldOut.returnsHeard();
  }

  /** A SKU found with nothing left in any of its buckets: refused from memory for a moment (`refuseIfSoldOut`). */
  rememberSoldOut(skuId: string, now: Date, returnsHeardBefore: number): void {
    this.soldOut.remember(skuId, now.getTime(), returnsHeardBefore);
  }

  /**
   * Hears, on its own connection (a subscriber serves nothing else), which SKUs any process
   * gave units back to, and forgets them as sold out at once.
   */
  async followReturnedStock(subscriber: RedisClient): Promise<void> {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.stockReturned) return;
      try {
        this.soldOut.forget(JSON.parse(message) as string[]);
      } catch {
        // not an announcement of ours: the memory's time still ends it
      }
    });
    await subscriber.subscribe(this.stockReturned);
  }

  /**
   * Units of these SKUs are on sale again: this process forgets them as sold out, and the
   * others hear it (`followReturnedStock`). Best effort: a process that misses it forgets
   * them when its memory's time is up.
   */
  private announceReturned(skuIds: readonly string[]): void {
    this.soldOut.forget(skuIds);
    this.redis.publish(this.stockReturned, JSON.stringify(skuIds)).catch(() => undefined);
  }

  /**
   * One round trip: the buyer's request budget and checkout velocity (`request.counters`),
   * idempotency, sale window, per-buyer limit, coupon use, and all-or-nothing reservation.
   * A cart that runs outside the buyer's own group (a SKU split into buckets) settles what
   * holds per buyer whatever the cart first, in their own group (`claimCheckout`): one more
   * round trip, since a script must stay on one Redis Cluster node.
   */
  async reserveStock(request: ReserveStockRequest): Promise<Reservation> {
    const { userId, items, counters } = request;
    const group = await this.checkoutGroup(userId, items);
    const orderId = this.keys.orderIdInGroup(request.orderId, group);
    const own = this.keys.groupOf(userId);
    // counted by the checkout's first script: the claim's outside the buyer's own group, else the reservation's
    let counted: CappedCounter[] = [];
    if (counters && !counters.spent) {
      const capped = cappedCounters(counters);
      if (capped.every((counter) => counter.slotGroup === own)) counted = capped;
      else {
        const { budget, velocity } = await this.countBeforehand(counters);
        const overVelocity = velocity !== undefined && velocity.count > counters.velocity!.max;
        const replay = overVelocity && (await this.keyRecorded(group, userId, request.idempotencyKey));
        this.refuseOverCounters(counters, budget, replay ? undefined : velocity?.count);
      }
    }
    const claim = group === own ? null : await this.claimCheckout(request, group, orderId, counted);
    if (claim) counted = [];
    // outside the buyer's own group the claim took the coupon's use: the reservation takes none
    const couponCode = claim ? '' : (request.payload.couponCode ?? '');
    const keys = [
      this.keys.idempotency(group, userId, request.idempotencyKey),
      this.keys.order(group, orderId),
      this.keys.accepted(group),
      this.keys.coupon(group, couponCode),
      this.keys.couponUses(group, couponCode, userId),
      this.keys.checkoutAttempt(group, userId, request.idempotencyKey),
      // outside the buyer's own group the claim lists the order in their queued orders
      this.keys.queuedOrders(group, userId),
    ];
    const args: (string | number)[] = [
      orderId,
      userId,
      request.bodyHash,
      this.timeouts.idempotencyTtlMs,
      this.timeouts.standardPaymentTimeoutMs,
      this.timeouts.flashSalePaymentTimeoutMs,
      request.requestedType ?? '',
      // the key and body hash too: an order recovered from this record (the sweeper) is written with them (AcceptedOrder)
      JSON.stringify({ ...request.payload, items, idempotencyKey: request.idempotencyKey, bodyHash: request.bodyHash }),
      couponCode,
      counted.length,
      this.timeouts.presaleBalanceTimeoutMs ?? 0,
      // the SKUs' type, known in the script alone, says whether the cart ships to an address
      request.payload.address ? '' : TYPES_SHIPPING_NOTHING,
      claim ? '' : '1',
    ];
    for (const counter of counted) {
      keys.push(counter.key);
      args.push(counter.windowMs, counter.max);
    }
    this.pushLineKeys(keys, group, userId, items);
    for (const line of items) args.push(line.qty);
    const spentWith = (reply: StockScriptReply<'reserveStock'>) => {
      if (counted.length > 0) counters!.counted({ count: Number(reply[0]), msLeft: Number(reply[1]) });
    };
    const returnsHeardBefore = this.soldOut.returnsHeard();
    let reply: StockScriptReply<'reserveStock'>;
    try {
      reply = await this.sendReserve(group, keys, args);
    } catch (error) {
      if (!(error instanceof BatchRefused)) {
        if (claim) await this.settleEvenIfAway(() => this.settleUnanswered(claim, group));
        throw error;
      }
      // the script ran and counted on the primary, whose replicas did not acknowledge it: the
      // buyer's counters are spent once, not counted again with the refusal
      const refused = error.reply as StockScriptReply<'reserveStock'>;
      spentWith(refused);
      if (claim) await this.settleClaim(claim, refused, false);
      throw error.refusal;
    }
    spentWith(reply);
    if (claim) await this.settleClaim(claim, reply, true);
    const [, budgetMsLeft, code, a, b, c, d, couponApplies] = reply;
    // every line in its flash sale: the coupon takes nothing off, and the use the claim took goes back now,
    // not once the order is priced (a coupon for the first so many orders would be held for nothing till then);
    // should Redis not answer, the order's pricing gives it back
    if (code === 1 && claim?.couponTaken && Number(couponApplies) === 0) await this.releaseCoupon({ orderId, userId, couponCode: claim.couponCode }).catch(() => false);
    const lineSku = (index: unknown) => items[Number(index) - 1]?.skuId ?? '';
    switch (code) {
      case 1:
      case 2:
        return {
          created: code === 1,
          order: {
            orderId: String(a),
            userId,
            type: b as OrderType,
            items,
            address: request.payload.address,
            couponCode: request.payload.couponCode,
            // by Redis's clock, as its sale and deadline; a replay is the first checkout's order,
            // accepted (and priced) when that one was
            acceptedAt: this.acceptedTimes.format(d !== undefined && d !== null ? Number(d) : request.now.getTime()),
            paymentDeadline: this.deadlineTimes.format(Number(c)),
            // a replay's body is the first's (another's is a conflict): the key's record is the same
            idempotencyKey: request.idempotencyKey,
            bodyHash: request.bodyHash,
          },
        };
      case -2:
        throw new UnknownSku(lineSku(a));
      case -3:
        throw new SaleNotActive(lineSku(a), b === undefined || b === null ? undefined : new Date(Number(b)));
      case -4:
        throw new LimitExceeded(lineSku(a));
      case -5:
        if (Number(b) <= 0 && this.bucketCounts.get(lineSku(a)) === 1) this.soldOut.remember(lineSku(a), request.now.getTime(), returnsHeardBefore);
        throw new OutOfStock(lineSku(a));
      case -6:
        throw new OrderTypeMismatch(request.requestedType ?? '', String(a));
      case -11:
        throw new OrderTypesMixed(items[0]?.skuId ?? '', String(c), lineSku(a), String(b));
      case -12:
        throw new AddressRequired(String(a));
      case -14:
        throw new SkuOffSale(lineSku(a));
      default:
        throw buyerRuleRefusal(Number(code), couponCode, Number(budgetMsLeft)) ?? new Error(`reserveStock answered an unknown code ${String(code)}`);
    }
  }

  /**
   * What holds per buyer whatever the cart, settled in the buyer's own group for a cart that
   * runs in another (claimCheckout-7+c.lua), in one call: the counters of `counted`, the claim
   * of the Idempotency-Key, a use of the coupon on the buyer's one counter. Refuses as the
   * reservation would; a retry refused over its velocity or its coupon goes on only to replay
   * the order accepted under its key, looked for in the cart's group. With none, the requests
   * holding the claim took that use or those attempts: while one may still be under way this
   * one is CheckoutInProgress (it may yet be refused, and free them); once they are gone the
   * claim is abandoned (`abandonClaim`) and this request taken on its own merits.
   */
  private async claimCheckout(request: ReserveStockRequest, group: string, orderId: string, counted: readonly CappedCounter[]): Promise<CheckoutClaim> {
    const { userId, idempotencyKey, counters } = request;
    const own = this.keys.groupOf(userId);
    const couponCode = request.payload.couponCode ?? '';
    const keys = [
      this.keys.idempotency(own, userId, idempotencyKey),
      this.keys.coupon(own, couponCode),
      this.keys.couponUses(own, couponCode, userId),
      this.keys.couponHeld(own, orderId),
      this.keys.checkoutAttempt(own, userId, idempotencyKey),
      this.keys.queuedOrders(own, userId),
      this.keys.claimsHoldingCoupons(own),
    ];
    const claimMs = this.timeouts.idempotencyTtlMs + CLAIM_OUTLIVES_RECORD_MS;
    const args: (string | number)[] = [
      userId,
      request.bodyHash,
      group,
      orderId,
      claimMs,
      couponCode,
      this.longestReservationMs(),
      this.timeouts.claimAbandonedAfterMs ?? CLAIM_ABANDONED_AFTER_MS,
      this.timeouts.idempotencyTtlMs,
      counted.length,
    ];
    for (const counter of counted) {
      keys.push(counter.key);
      args.push(counter.windowMs, counter.max);
    }
    const claimOf = ([, , code, taken, ...others]: StockScriptReply<'claimCheckout'>): CheckoutClaim => ({
      orderId,
      userId,
      idempotencyKey,
      couponCode,
      holdsClaim: code === 1 || code === 2,
      couponTaken: Number(code) >= 1 && taken === 1,
      otherHolders: code === 2 ? others.map(String) : [],
    });
    const spentWith = (reply: StockScriptReply<'claimCheckout'>) => {
      if (counted.length > 0) counters!.counted({ count: Number(reply[0]), msLeft: Number(reply[1]) });
    };
    let reply: StockScriptReply<'claimCheckout'>;
    try {
      reply = await this.pipelines.send(own, (pipeline) => queueStockScript(pipeline, 'claimCheckout', keys, args));
    } catch (error) {
      if (!(error instanceof BatchRefused)) {
        // unanswered (timed out, connection lost), the claim may have run all the same: what it
        // would have taken is given back after it on the same connection, or the buyer's retry
        // under the key would find their coupon used by an order that never was
        await this.settleEvenIfAway(() => this.withdrawClaim({ orderId, userId, idempotencyKey, couponCode, holdsClaim: true, couponTaken: couponCode !== '', otherHolders: [] }));
        throw error;
      }
      // claimed on the primary, whose replicas did not acknowledge it: given back, for the buyer's retry
      const refused = error.reply as StockScriptReply<'claimCheckout'>;
      spentWith(refused);
      await this.withdrawClaim(claimOf(refused));
      throw error.refusal;
    }
    spentWith(reply);
    const [, budgetMsLeft, code, refusal, holders, takenUpAt, ...holderOrderIds] = reply;
    if (code === 1 || code === 2 || (code === 0 && (await this.keyRecorded(group, userId, idempotencyKey)))) return claimOf(reply);
    const refused = buyerRuleRefusal(Number(code === 0 ? refusal : code), couponCode, Number(budgetMsLeft)) ?? new Error(`claimCheckout answered an unknown code ${String(code)}`);
    if (holders === CLAIM_HOLDERS_UNDER_WAY) throw new CheckoutInProgress();
    if (holders === CLAIM_HOLDERS_GONE) {
      // not abandoned: a request took the claim up since, and is under way
      if (!(await this.abandonClaim({ userId, idempotencyKey, couponCode }, Number(takenUpAt), holderOrderIds.map(String)))) throw new CheckoutInProgress();
      // its attempt counted already, this request is refused over the velocity; refused over the
      // coupon, it claims again, the gone requests' uses given back
      if (!(refused instanceof CheckoutRefused)) return this.claimCheckout(request, group, orderId, []);
    }
    throw refused;
  }

  /**
   * Gives back the coupon uses that the requests holding a claim took under it (one gone for
   * good: killed between its claim and its reservation), and drops the claim, unless a request
   * took it up since `takenUpAt` (abandonClaim-3+2h.lua). True when abandoned now. Its caller
   * found, after reading `takenUpAt`, that nobody took the claim up within `claimAbandonment()`'s
   * `afterMs`, that it was made within its `madeWithinMs`, and no order recorded under the key in
   * the cart's group: the checkout as the buyer retries it, or the stock check (AbandonedClaims).
   */
  async abandonClaim({ userId, idempotencyKey, couponCode }: { userId: string; idempotencyKey: string; couponCode: string }, takenUpAt: number, holderOrderIds: readonly string[]): Promise<boolean> {
    const own = this.keys.groupOf(userId);
    const keys = [this.keys.idempotency(own, userId, idempotencyKey), this.keys.coupon(own, couponCode), this.keys.couponUses(own, couponCode, userId)];
    for (const orderId of holderOrderIds) keys.push(this.keys.couponHeld(own, orderId), this.keys.couponGivenBack(own, orderId));
    // on the claims' connection: the WAIT of the claim made after it covers it too
    return (await runStockScript(this.reserving, 'abandonClaim', keys, [takenUpAt, GIVEN_BACK_KEPT_AT_MOST_MS])) === 1;
  }

  /**
   * When a claim's requests are gone, as claimCheckout-7+c.lua judges them: nobody took it up for
   * `afterMs`; and when an order accepted under it would still be recorded: it was made less
   * than `madeWithinMs` (the idempotency TTL) ago. Both by Redis's clock.
   */
  claimAbandonment(): { afterMs: number; madeWithinMs: number } {
    return { afterMs: this.timeouts.claimAbandonedAfterMs ?? CLAIM_ABANDONED_AFTER_MS, madeWithinMs: this.timeouts.idempotencyTtlMs };
  }

  /**
   * A claim after its reservation answered `reply`: its coupon use goes back unless an order
   * was accepted now (a replay's order holds the first request's use), and this request lets
   * go of the claim when the reservation refused: the claim goes once no request holds it, so
   * the key is free again as after any refused checkout. A replay of this request's own order is its call run twice (ioredis
   * sends again what it wrote before a lost connection and had no answer to): the first run
   * accepted it, and it holds this claim's use. `answered`: the buyer gets the reservation's
   * answer (not a 503), so a refusal is for good.
   */
  private async settleClaim(claim: CheckoutClaim, [, , code, orderId]: StockScriptReply<'reserveStock'>, answered: boolean): Promise<void> {
    const accepted = Number(code) === 1 || (Number(code) === 2 && orderId === claim.orderId);
    await this.withdrawClaim({ ...claim, holdsClaim: claim.holdsClaim && Number(code) < 0, couponTaken: claim.couponTaken && !accepted }, answered && Number(code) < 0);
    if (accepted) await this.giveBackOtherHolders(claim);
  }

  /**
   * Once a claim's order is accepted, the other orders that took a coupon use under its key never
   * will be (one key, one order): a request killed between its claim and its reservation, whose
   * buyer retried under the key, would hold its use for good (the stock check leaves a claim with
   * an order). Each given back once by its hold: a request still under way that finds this order
   * as it reserves gives back its own, and finds it given back already.
   */
  private async giveBackOtherHolders(claim: CheckoutClaim): Promise<void> {
    if (claim.otherHolders.length === 0) return;
    const pipeline = this.reserving.pipeline();
    for (const orderId of claim.otherHolders) queueStockScript(pipeline, 'releaseCoupon', this.couponHolderKeys(orderId, claim.userId, claim.couponCode), ['held', GIVEN_BACK_KEPT_AT_MOST_MS]);
    pipeline.hdel(this.keys.idempotency(this.keys.groupOf(claim.userId), claim.userId, claim.idempotencyKey), ...claim.otherHolders.map((orderId) => `c:${orderId}`));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  /**
   * A claim whose reservation went unanswered: the key's record, read after the reservation on
   * the same connection, says whether it accepted this request's order, which then holds the
   * claim's use. Not accepted, the claim is settled as refused, also when the record names the
   * order of another request under the key (the buyer's retry, accepted meanwhile: that order
   * holds its own claim's use). A read unanswered too is asked again after it, without keeping
   * the buyer waiting, until Redis answers: a reservation that refused the order when it ran at
   * last would otherwise leave the claim holding the coupon use for good.
   */
  private async settleUnanswered(claim: CheckoutClaim, group: string): Promise<void> {
    let accepted: boolean;
    try {
      accepted = (await this.reserving.hget(this.keys.idempotency(group, claim.userId, claim.idempotencyKey), 'o')) === claim.orderId;
    } catch (error) {
      if (error instanceof Error && UNANSWERED.test(error.message)) void this.settleEvenIfAway(() => this.settleUnanswered(claim, group));
      throw error;
    }
    if (!accepted) await this.withdrawClaim(claim);
    else await this.giveBackOtherHolders(claim);
  }

  /**
   * Settles a command that went unanswered (`settle` sends what does it, after the command on the
   * same connection). A settlement that finds the connection down has sent nothing: it runs again
   * once the connection is back, after what ioredis sends again first (the unanswered command, if
   * the connection came back at once), or the claim would hold the buyer's coupon use for good.
   * One unanswered while connected was sent: it runs after the command all the same.
   */
  private async settleEvenIfAway(settle: () => Promise<void>): Promise<void> {
    try {
      await settle();
    } catch {
      if (this.reserving.status === 'ready') return;
      // 'ready' is emitted after ioredis has sent again what it had written and not heard back about
      if (this.awaitingConnection.push(() => this.settleEvenIfAway(settle)) === 1) {
        this.reserving.once('ready', () => {
          for (const again of this.awaitingConnection.splice(0)) void again();
        });
      }
    }
  }

  /**
   * Gives back the coupon use a claim took and lets go of the claim, dropped once no request
   * holds it (else left), in one round trip. A checkout `refusedForGood` (answered with its refusal, not a 503 that its
   * buyer retries) takes the record of its counted attempt with it (dropClaim-2.lua).
   */
  private async withdrawClaim(claim: CheckoutClaim, refusedForGood = false): Promise<void> {
    if (!claim.holdsClaim && !claim.couponTaken) return;
    const own = this.keys.groupOf(claim.userId);
    const pipeline = this.reserving.pipeline();
    // a claim's use is in its hold, if the claim ran at all
    if (claim.couponTaken) queueStockScript(pipeline, 'releaseCoupon', this.couponHolderKeys(claim.orderId, claim.userId, claim.couponCode), ['held', GIVEN_BACK_KEPT_AT_MOST_MS]);
    const keys = [this.keys.idempotency(own, claim.userId, claim.idempotencyKey), this.keys.checkoutAttempt(own, claim.userId, claim.idempotencyKey)];
    queueStockScript(pipeline, 'dropClaim', keys, [claim.orderId, claim.holdsClaim ? 1 : 0, refusedForGood ? 1 : 0]);
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  /**
   * releaseCoupon-4.lua's keys for an order's coupon use, all in its buyer's own group: the hash
   * holding the use (the order's record there, else its hold), the uses, the given-back marker.
   */
  private couponHolderKeys(orderId: string, userId: string, couponCode: string): string[] {
    const own = this.keys.groupOf(userId);
    const holder = this.keys.groupOfOrder(orderId) === own ? this.keys.order(own, orderId) : this.keys.couponHeld(own, orderId);
    return [holder, this.keys.coupon(own, couponCode), this.keys.couponUses(own, couponCode, userId), this.keys.couponGivenBack(own, orderId)];
  }

  /**
   * The group an order runs in: {g0}, or the buyer's bucket when its SKUs are split into
   * buckets. Every line must then be split the same way, so all of them are in that bucket.
   */
  private async checkoutGroup(userId: string, items: readonly OrderLineRequest[]): Promise<string> {
    const buckets = await this.bucketsOf(items.map((line) => line.skuId));
    const counts = items.map((line) => buckets.get(line.skuId) ?? 1);
    const split = Math.max(...counts);
    if (split <= 1) return '{g0}';
    const alone = items.find((_, i) => counts[i] !== split);
    if (alone) throw new BucketedSkuSoldAlone(items.find((_, i) => counts[i] === split)!.skuId);
    return this.keys.bucketGroup(this.keys.bucketOf(userId, split));
  }

  /**
   * Buckets per SKU; a SKU without counters reads as 1 and is asked again next time, and so
   * does one whose hash holds counters without its rules (the bucket count is one of them)
   * until the stock repair puts them back.
   */
  async bucketsOf(skuIds: readonly string[]): Promise<Map<string, number>> {
    const unknown = [...new Set(skuIds)].filter((skuId) => !this.bucketCounts.has(skuId));
    if (unknown.length > 0) {
      const pipeline = this.redis.pipeline();
      for (const skuId of unknown) pipeline.hmget(this.keys.sku('{g0}', skuId), 'available', 'buckets', 'deduction');
      const replies = (await pipeline.exec()) ?? [];
      unknown.forEach((skuId, i) => {
        const [error, reply] = replies[i] ?? [new Error('no reply'), null];
        if (error) throw error;
        const [available, buckets, deduction] = reply as Array<string | null>;
        if (available !== null && deduction !== null) this.bucketCounts.set(skuId, Math.max(1, Number(buckets ?? 1)));
      });
    }
    return new Map(skuIds.map((skuId) => [skuId, this.bucketCounts.get(skuId) ?? 1]));
  }

  /** The bucket of a SKU that a buyer buys from, without asking Redis; null when the SKU is not known to be split. */
  bucketOfBuyer(skuId: string, userId: string): number | null {
    const buckets = this.bucketCounts.get(skuId) ?? 1;
    return buckets > 1 ? this.keys.bucketOf(userId, buckets) : null;
  }

  /** Appends per line its SKU's counters and the buyer's bought counter to `keys`, as the reserve and release scripts take them. */
  private pushLineKeys(keys: string[], group: string, userId: string, items: readonly OrderLineRequest[]): string[] {
    // a loop, not flatMap: V8's flattening costs ~0.5 µs here, on every checkout
    for (const line of items) keys.push(this.keys.sku(group, line.skuId), this.keys.bought(group, line.skuId, userId));
    return keys;
  }

  /** A checkout's counters counted in a call of their own, before its reservation (the caller refuses as the script would). */
  private async countBeforehand(counters: CheckoutCounters): Promise<{ budget: WindowCount; velocity: WindowCount | undefined }> {
    const [budget, velocity] = await this.windowCounters.countEach(cappedCounters(counters));
    return { budget: budget!, velocity };
  }

  /**
   * Records the budget's count, then refuses a checkout past its budget or its velocity, as
   * the reservation script does. A retry of an accepted checkout (its key recorded) passes no
   * velocity count: it is no new attempt, and a 403 would hide the order its buyer must pay.
   */
  private refuseOverCounters(counters: CheckoutCounters, budget: WindowCount, velocityCount: number | undefined): void {
    counters.counted(budget);
    if (budget.count > counters.budget.max) throw new RequestBudgetSpent(budget.msLeft);
    if (velocityCount !== undefined && velocityCount > counters.velocity!.max) throw new CheckoutRefused('velocity');
  }

  /** The reservations of one event-loop turn share a pipeline per group (PipelinePerTurn). */
  private sendReserve(group: string, keys: string[], args: (string | number)[]): Promise<StockScriptReply<'reserveStock'>> {
    return this.pipelines.send(group, (pipeline) => queueStockScript(pipeline, 'reserveStock', keys, args));
  }

  /**
   * Returns true when this call gave the stock back, false when it was already released or
   * committed. `couponCode` is the order's coupon as MySQL has it: without the reservation
   * record (Redis lost it) the coupon use still goes back, once.
   */
  async releaseStock(orderId: string, userId: string, reason: string, couponCode: string | null = null): Promise<boolean> {
    const group = this.keys.groupOfOrder(orderId);
    const stored = await this.readReservation(group, orderId);
    if (stored?.state === 'committed') return false;
    let released = false;
    if (stored?.state === 'reserved') {
      couponCode = stored.payload.couponCode;
      const keys = this.pushLineKeys(
        [this.keys.order(group, orderId), this.keys.coupon(group, couponCode ?? ''), this.keys.couponUses(group, couponCode ?? '', userId), this.keys.couponGivenBack(group, orderId)],
        group,
        userId,
        stored.payload.items,
      );
      released = (await runStockScript(this.redis, 'releaseStock', keys, [reason, RELEASED_RECORD_KEPT_MS, GIVEN_BACK_KEPT_AT_MOST_MS])) === 1;
      if (released) this.announceReturned(stored.payload.items.map((line) => line.skuId));
    }
    // the script gives back the use its record holds; here, once, one held in the buyer's own
    // group (an order of another group), or one whose record Redis lost (the stock repair
    // counted it from MySQL), also after a release that stopped short of it
    if (couponCode && (!stored || group !== this.keys.groupOf(userId))) await this.releaseCoupon({ orderId, userId, couponCode });
    return released;
  }

  /**
   * Gives back the coupon use an order took at checkout while the order lives on (the
   * coupon did not apply when it was priced, or the paid order was cancelled); once only,
   * also after its reservation record has expired. Returns true when given back now.
   */
  async releaseCoupon(order: Pick<AcceptedOrder, 'orderId' | 'userId' | 'couponCode'>): Promise<boolean> {
    if (!order.couponCode) return false;
    return (await runStockScript(this.redis, 'releaseCoupon', this.couponHolderKeys(order.orderId, order.userId, order.couponCode), ['', GIVEN_BACK_KEPT_AT_MOST_MS])) === 1;
  }

  /**
   * Now by Redis's clock, the one checkouts are accepted by (an order's `acceptedAt`): what applies
   * to the orders accepted from a moment on is stamped with it, whatever the clock of the api host.
   */
  async acceptanceClock(): Promise<Date> {
    const [seconds, micros] = await this.redis.time();
    return new Date(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
  }

  /** How many orders hold a use of the coupon now, as checkout counts them; null while Redis has no copy of it. */
  async couponUsesHeld(code: string): Promise<number | null> {
    const [published, taken] = await this.redis.hmget(this.keys.coupon(this.keys.couponGroup(), code), 'startsAt', 'taken');
    return published === null ? null : Number(taken ?? 0);
  }

  /** Whether checkout's copy of the coupon is in Redis. */
  async couponPublished(code: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.coupon(this.keys.couponGroup(), code))) === 1;
  }

  /**
   * Publishes a coupon for checkout: how many orders of one buyer may use it, how many in all, and
   * when. Once, in the buyers' group: a checkout takes a coupon's use there whatever group its cart
   * runs in (reserveStock-7+c+2n.lua for a cart there, claimCheckout-7+c.lua for one in a bucket's).
   * Kept a day past the coupon's end, as its buyers' uses: checkout refuses it from its end on, and
   * a coupon a month would otherwise stay in Redis for good.
   */
  async publishCoupon(coupon: { code: string; perBuyerLimit: number; totalLimit?: number; startsAt: Date; endsAt: Date }, taken = 0): Promise<void> {
    // an end Redis has from an early end stays (publishCoupon-1.lua); the uses counted stay, `taken` only where there is no count
    await runStockScript(this.redis, 'publishCoupon', [this.keys.coupon(this.keys.couponGroup(), coupon.code)], [coupon.perBuyerLimit, coupon.totalLimit ?? 0, coupon.startsAt.getTime(), coupon.endsAt.getTime(), taken]);
  }

  /**
   * Ends checkout's copy of a coupon now, by Redis's clock (endCoupon-1.lua): its end as it stands
   * after (ended before, or not started, it keeps its own). Without a copy, Redis keeps the end
   * alone, which a publish on its way keeps.
   */
  async endCoupon(code: string): Promise<Date> {
    return new Date(await runStockScript(this.redis, 'endCoupon', [this.keys.coupon(this.keys.couponGroup(), code)], []));
  }

  /**
   * At payment: the order's reserved (placement) or checked (payment-time) units become
   * sold, exactly once, all lines or none (commitStock-1+n.lua). With replicas to wait for
   * (`ReservationDurability`), committed only once they hold it, else StockNotReplicated: a
   * payment-time SKU's units leave sale with this write alone, and a failover to a replica
   * without it would sell them again. Asked again, it waits for them again.
   */
  async commitStock(orderId: string): Promise<CommitOutcome> {
    const outcome = await this.commitOnMaster(orderId);
    if (outcome.status === 'committed' || outcome.status === 'already') {
      await this.awaitReplicas((pipeline) => pipeline.exists(this.keys.order(this.keys.groupOfOrder(orderId), orderId)), `the stock commit of order ${orderId}`);
    }
    return outcome;
  }

  /**
   * The first of the order's payment-time SKUs whose units on sale no longer cover its line, read
   * as its stock commit at payment would find them (commitStock-1+n.lua: the reservation record's
   * lines, the group's counters, none where Redis lost the SKU's), or the one it already found
   * gone; null when all are covered, or when the record is settled or missing (the commit answers
   * those). The pay route reads it before charging; the commit re-verifies, as stock may go in
   * between. From Redis alone: a pay never waits on MySQL's order lines for it.
   */
  async paymentTimeSkuGone(orderId: string): Promise<string | null> {
    const group = this.keys.groupOfOrder(orderId);
    const [state, gone, recorded, payload] = await this.redis.hmget(this.keys.order(group, orderId), 's', 'g', 'l', 'p');
    if (state !== 'reserved' || !recorded || !payload) return null;
    const { items } = JSON.parse(payload) as StoredReservation['payload'];
    if (gone) return items[Number(gone) - 1]?.skuId ?? null;
    const deductions = (JSON.parse(recorded) as Array<[number, string]>).map(([, deduction]) => deduction);
    const lines = items.filter((_, i) => deductions[i] === 'payment');
    if (lines.length === 0) return null;
    const available = await this.redis.pipeline(lines.map((line) => ['hget', this.keys.sku(group, line.skuId), 'available'])).exec();
    return uncoveredPaymentLine(
      lines,
      lines.map((_, i) => {
        const [error, units] = available?.[i] ?? [new Error('the pipeline answered nothing'), null];
        if (error) throw error;
        return units === null ? null : Number(units);
      }),
    );
  }

  /**
   * After a merchant's stock set of the SKU (or its repeat): once the replicas hold every
   * bucket as the set left it (`ReservationDurability`), else StockNotReplicated: a failover to
   * a replica without it would sell the stock it replaced, a higher one put back on sale.
   */
  async awaitStockSetReplicas(skuId: string): Promise<void> {
    if (!this.durability) return;
    const buckets = (await this.bucketsOf([skuId])).get(skuId) ?? 1;
    // one bucket at a time: with the replica away the first WAIT fails the set, not one timeout per bucket
    for (let bucket = 0; bucket < buckets; bucket++) await this.awaitReplicas((pipeline) => pipeline.exists(this.keys.sku(this.keys.bucketGroup(bucket), skuId)), `the stock set of ${skuId}`);
  }

  /**
   * Once the replicas `durability` asks hold everything the group's node took before now, whoever
   * wrote it: a write of the group's own, then a WAIT for it (replication runs in order, so what
   * came before it is held too). StockNotReplicated when fewer acknowledge in time. A reservation
   * answered 503 because no replica acknowledged it stays on the master; persisted from there and
   * then lost in a failover to a replica that missed it, its order would be in MySQL while the new
   * master sells its units and counts its buyer anew.
   */
  async awaitGroupReplicated(group: string): Promise<void> {
    await this.awaitReplicas((pipeline) => pipeline.set(this.keys.replicaProbe(group), '1', 'PX', 60_000), `what group ${group} holds`);
  }

  /**
   * WAITs on the connection the writes were sent on for the replicas `durability` asks, beside
   * `before` (a read of a key the writes went to, or a write of its own) in one pipeline: on a Redis
   * Cluster the WAIT then goes to the node holding that key, the one that took the writes. Fewer
   * acknowledgements in time are StockNotReplicated (`what` says of what).
   */
  private async awaitReplicas(before: (pipeline: ChainableCommander) => ChainableCommander, what: string): Promise<void> {
    if (!this.durability) return;
    const { replicaAcks, timeoutMs } = this.durability;
    const replies = await before(this.reserving.pipeline()).wait(replicaAcks, timeoutMs).exec();
    const [error, acknowledged] = replies?.[1] ?? [new Error('the pipeline answered nothing'), 0];
    if (error) throw error;
    if (Number(acknowledged) < replicaAcks) throw new StockNotReplicated(`${Number(acknowledged)} of ${replicaAcks} replicas acknowledged ${what} within ${timeoutMs} ms`);
  }

  private async commitOnMaster(orderId: string): Promise<CommitOutcome> {
    const group = this.keys.groupOfOrder(orderId);
    const stored = await this.readReservation(group, orderId);
    if (!stored) return { status: 'missing' };
    if (stored.state !== 'reserved') return { status: stored.state === 'committed' ? 'already' : 'released' };
    const keys = [this.keys.order(group, orderId), ...stored.payload.items.map((line) => this.keys.sku(group, line.skuId))];
    // on the connection its WAIT goes on: the wait covers this write
    const [code, lineIndex] = await runStockScript(this.reserving, 'commitStock', keys, []);
    switch (code) {
      case 1:
        return { status: 'committed' };
      case 0:
        return { status: 'already' };
      case -1:
        return { status: 'missing' };
      case -2:
        return { status: 'released' };
      case -3:
        return { status: 'gone', skuId: stored.payload.items[lineIndex - 1]?.skuId ?? '' };
      default:
        throw new Error(`commitStock answered an unknown code ${String(code)}`);
    }
  }

  /**
   * Puts back the reservation record of a persisted order that Redis lost, as MySQL has the
   * order (restoreReservation-2.lua), so that its commit or release runs as it would have:
   * without it a commit takes none of the order's payment-time units and a release gives
   * none of its placement units back, while the stock repair counted both from the ledger.
   * Kept as long as the record it replaces (a week past the payment deadline, a presale's
   * balance timeout more), and at least a week from now: one put back after that record would
   * have expired is put back for a commit or release that needs it now. Its coupon use goes on
   * the record for an order of its buyer's own group alone, as the checkout put it; another's
   * is held in the buyer's group (releaseCoupon-4.lua). False when Redis had a record.
   */
  async restoreReservation(order: PersistedReservation, countedSkus: ReadonlySet<string> = new Set()): Promise<boolean> {
    const group = this.keys.groupOfOrder(order.orderId);
    // limited 0: the buyer's flash-sale count went with the record, and does not count these units;
    // the repair's count put back from MySQL does, and marks them limited then (restoreBoughtCounts),
    // or names the SKUs of counts it put back with this order in them (`countedSkus`) before the record is back
    const recorded = order.lines.map((line) => [line.qty, line.deduction, countedSkus.has(line.skuId) ? 1 : 0]);
    const payload = { address: order.address, couponCode: order.couponCode, items: order.lines.map(({ skuId, qty }) => ({ skuId, qty })) };
    const couponOnRecord = group === this.keys.groupOf(order.userId) ? (order.couponCode ?? '') : '';
    const balanceMs = order.type === 'presale' ? (this.timeouts.presaleBalanceTimeoutMs ?? 0) : 0;
    const keptUntil = Math.max(order.paymentDeadline.getTime() + RESERVATION_KEPT_AFTER_DEADLINE_MS + balanceMs, Date.now() + RESERVATION_KEPT_AFTER_DEADLINE_MS);
    const keys = [this.keys.order(group, order.orderId), this.keys.couponGivenBack(group, order.orderId)];
    const args = [order.userId, order.type, order.paymentDeadline.getTime(), order.acceptedAt.getTime(), JSON.stringify(recorded), JSON.stringify(payload), couponOnRecord, keptUntil];
    return (await runStockScript(this.redis, 'restoreReservation', keys, args)) === 1;
  }

  /**
   * Puts sold units back on sale (a cancelled or refunded paid order, a received return)
   * in the bucket the order bought them from, once per `ref` (the refund's id): a retry
   * after a crash restocks nothing twice. A paid order's cancellation gives its buyer's
   * flash-sale units back to their per-buyer limit in the same step (`limitGivenBackBy` says
   * whose, and of which SKUs), so that too happens once, whichever caller restocks first.
   * Returns false when this ref was already restocked. `countsPutBack`: buyers' counts the stock
   * repair put back from MySQL (restoreBoughtCounts), which leave a cancellation's units out already.
   */
  async restockStock(orderId: string, ref: string, lines: ReadonlyArray<{ skuId: string; qty: number }>, countsPutBack: ReadonlySet<string> = new Set()): Promise<boolean> {
    if (lines.length === 0) return false;
    const group = this.keys.groupOfOrder(orderId);
    const limit = await this.limitGivenBackBy({ orderId, ref });
    const keys = [this.keys.restock(group, ref)];
    for (const line of lines) keys.push(this.keys.sku(group, line.skuId), this.keys.bought(group, line.skuId, limit?.userId ?? ''));
    const givenBack = lines.map((line, i) => (limit?.skuIds.includes(line.skuId) && !countsPutBack.has(keys[2 + 2 * i]!) ? line.qty : 0));
    const args = [...lines.map((line) => line.qty), ...givenBack, RESTOCK_MARKER_TTL_MS, limit?.acceptedAt.getTime() ?? 0];
    const restocked = (await runStockScript(this.redis, 'restockStock', keys, args)) === 1;
    if (restocked) this.announceReturned(lines.map((line) => line.skuId));
    return restocked;
  }

  /**
   * The earliest acceptance whose reservation record may still be in Redis: a record is kept
   * a week past its payment deadline (reserveStock's PEXPIREAT), which comes at most the
   * longer payment timeout after acceptance, and a presale's for its balance timeout more.
   * An order's id is made on its api host's clock, its deadline on Redis's, and `now` is the
   * caller's: reaching back `CLOCKS_APART_MS` further, no record outlives the orders looked at.
   */
  reservationsKeptSince(now: Date): Date {
    return new Date(now.getTime() - this.longestReservationMs() - CLOCKS_APART_MS);
  }

  /** The longest a reservation record is kept after its acceptance (`reservationsKeptSince`). */
  private longestReservationMs(): number {
    const longestTimeoutMs = Math.max(this.timeouts.standardPaymentTimeoutMs, this.timeouts.flashSalePaymentTimeoutMs);
    return RESERVATION_KEPT_AFTER_DEADLINE_MS + longestTimeoutMs + (this.timeouts.presaleBalanceTimeoutMs ?? 0);
  }

  /** The earliest restock whose marker may still be in Redis: older markers have expired, so Redis cannot tell whether it restocked them. */
  restocksKeptSince(now: Date): Date {
    return new Date(now.getTime() - RESTOCK_MARKER_TTL_MS);
  }

  /**
   * The earliest acceptance whose Idempotency-Key record may still be in Redis: the checkout keeps
   * it IDEMPOTENCY_TTL_MS, and reaches back CLOCKS_APART_MS further as `reservationsKeptSince` does.
   */
  checkoutKeysKeptSince(now: Date): Date {
    return new Date(now.getTime() - this.timeouts.idempotencyTtlMs - CLOCKS_APART_MS);
  }

  /**
   * Writes again the records of the Idempotency-Keys of these orders that Redis lost, as the
   * checkout wrote them (reserveStock-7+c+2n.lua's fields, kept IDEMPOTENCY_TTL_MS from the order's
   * acceptance), so a buyer resending the checkout whose 202 they never saw is answered this order
   * and not accepted a second one. An order of a cart that ran outside its buyer's own group gets
   * its key's claim there too (claimCheckout-7+c.lua's, its one holder the order), so another cart
   * under the key is still a conflict. One Redis has is left as it is (restoreCheckoutKey-1.lua).
   * Returns how many records (claims not counted) were put back.
   */
  async restoreCheckoutKeys(orders: readonly PersistedCheckoutKey[]): Promise<number> {
    const ttlMs = this.timeouts.idempotencyTtlMs;
    const writes: Array<{ group: string; record: boolean; keys: string[]; args: Array<string | number> }> = [];
    for (const order of orders) {
      const group = this.keys.groupOfOrder(order.orderId);
      const own = this.keys.groupOf(order.userId);
      const acceptedAt = order.acceptedAt.getTime();
      writes.push({
        group,
        record: true,
        keys: [this.keys.idempotency(group, order.userId, order.idempotencyKey)],
        args: [acceptedAt + ttlMs, 'h', order.bodyHash, 'o', order.orderId, 't', order.type, 'd', order.paymentDeadline.getTime(), 'a', acceptedAt, 'u', order.userId],
      });
      if (group === own) continue;
      writes.push({
        group: own,
        record: false,
        keys: [this.keys.idempotency(own, order.userId, order.idempotencyKey)],
        args: [acceptedAt + ttlMs + CLAIM_OUTLIVES_RECORD_MS, 'h', order.bodyHash, 'u', order.userId, 'g', group, 'n', order.orderId, 'f', acceptedAt, 'l', acceptedAt, `k:${order.orderId}`, 1],
      });
    }
    let restored = 0;
    for (const [, inGroup] of this.byGroup(writes, (write) => write.group)) {
      // a day of orders may be many: written in pipelines of a bounded size
      for (let start = 0; start < inGroup.length; start += READS_PER_PIPELINE) {
        const batch = inGroup.slice(start, start + READS_PER_PIPELINE);
        const pipeline = this.redis.pipeline();
        for (const write of batch) queueStockScript(pipeline, 'restoreCheckoutKey', write.keys, write.args);
        ((await pipeline.exec()) ?? []).forEach(([error, put], i) => {
          if (error) throw error;
          if (put === 1 && batch[i]!.record) restored++;
        });
      }
    }
    return restored;
  }

  /** Each order's reservation state in Redis ('reserved', 'released', 'committed'); orders Redis has no record of are left out. */
  async reservationStates(orderIds: readonly string[]): Promise<Map<string, string>> {
    const states = new Map<string, string>();
    for (const [group, inGroup] of this.byGroup(orderIds, (orderId) => this.keys.groupOfOrder(orderId))) {
      // a week of orders may be many: read in pipelines of a bounded size
      for (let start = 0; start < inGroup.length; start += READS_PER_PIPELINE) {
        const ids = inGroup.slice(start, start + READS_PER_PIPELINE);
        const pipeline = this.redis.pipeline();
        for (const orderId of ids) pipeline.hget(this.keys.order(group, orderId), 's');
        ((await pipeline.exec()) ?? []).forEach(([error, state], i) => {
          if (error) throw error;
          if (typeof state === 'string') states.set(ids[i]!, state);
        });
      }
    }
    return states;
  }

  /** Of these restocks (by ref), those Redis has done: their marker is there. */
  async restockedRefs(restocks: ReadonlyArray<{ orderId: string; ref: string }>): Promise<Set<string>> {
    const done = new Set<string>();
    for (const [group, inGroup] of this.byGroup(restocks, (restock) => this.keys.groupOfOrder(restock.orderId))) {
      const pipeline = this.redis.pipeline();
      for (const { ref } of inGroup) pipeline.exists(this.keys.restock(group, ref));
      ((await pipeline.exec()) ?? []).forEach(([error, exists], i) => {
        if (error) throw error;
        if (exists === 1) done.add(inGroup[i]!.ref);
      });
    }
    return done;
  }

  /**
   * Puts back each buyer's uses of a coupon where Redis has none (it lost them), counted
   * from the orders that redeemed it, in the buyer's own group (whatever group each order
   * ran in). Counts Redis still has are kept: they include orders accepted and not yet in
   * MySQL. `givenBack`: the orders whose use MySQL has given back within RELEASES_REMEMBERED_MS,
   * which a count put back leaves out: where Redis has no count they are marked given back
   * (restoreCouponUses-1+n.lua), so that their release asked for again gives no use back from
   * the count put back, or from the one their buyer's next checkout starts. Returns how many
   * buyers' counts were put back.
   */
  async restoreCouponUses(
    coupon: { code: string; endsAt: Date },
    redemptions: ReadonlyArray<{ orderId: string; userId: string }>,
    givenBack: ReadonlyArray<{ orderId: string; userId: string }> = [],
  ): Promise<number> {
    const buyers = new Map<string, { uses: number; givenBack: string[] }>();
    const buyer = (userId: string) => buyers.get(userId) ?? buyers.set(userId, { uses: 0, givenBack: [] }).get(userId)!;
    for (const { userId } of redemptions) buyer(userId).uses++;
    for (const { orderId, userId } of givenBack) buyer(userId).givenBack.push(orderId);
    // kept as long as the checkout keeps them: a day past the coupon's end
    const keptUntil = coupon.endsAt.getTime() + COUPON_USES_KEPT_AFTER_END_MS;
    const replies = await Promise.all(
      [...buyers].map(([userId, { uses, givenBack: orderIds }]) => {
        const group = this.keys.groupOf(userId);
        const keys = [this.keys.couponUses(group, coupon.code, userId), ...orderIds.map((orderId) => this.keys.couponGivenBack(group, orderId))];
        return runStockScript(this.redis, 'restoreCouponUses', keys, [uses, keptUntil, GIVEN_BACK_KEPT_AT_MOST_MS]);
      }),
    );
    return replies.filter((reply) => reply === 1).length;
  }

  /**
   * Puts back each buyer's count of a flash-sale SKU's units toward its per-buyer limit where
   * Redis has none (it lost it), summed from `held`: per order, the units that still count (the
   * caller's, from MySQL and from the orders accepted and not yet in it). Counts Redis still has of
   * this sale are kept, as `restoreCouponUses` keeps coupon uses; one of an earlier sale is replaced.
   * A count names the sale and goes at its end, as the checkout's does; an open order counted in it
   * whose record the repair put back from MySQL has its lines of the SKU counted toward the limit
   * again (restoreBought-1+n.lua), so its release gives them back. Returns the buyers' counts
   * (their keys) put back or raised.
   */
  async restoreBoughtCounts(sale: { skuId: string; startsAt: Date; endsAt: Date }, held: ReadonlyArray<{ orderId: string; userId: string; qty: number }>): Promise<string[]> {
    // a buyer's count is in the group of their orders of the SKU (its bucket: always the same one for them)
    const counts = new Map<string, { group: string; userId: string; qty: number; orderIds: Set<string> }>();
    for (const { orderId, userId, qty } of held) {
      const group = this.keys.groupOfOrder(orderId);
      const key = this.keys.bought(group, sale.skuId, userId);
      const count = counts.get(key) ?? { group, userId, qty: 0, orderIds: new Set<string>() };
      counts.set(key, count);
      count.qty += qty;
      count.orderIds.add(orderId);
    }
    const restored: string[] = [];
    for (const [key, { group, qty, orderIds }] of counts) {
      if (qty <= 0) continue;
      const records = [...orderIds].map((orderId) => this.keys.order(group, orderId));
      if ((await runStockScript(this.redis, 'restoreBought', [key, ...records], [qty, sale.endsAt.getTime(), sale.skuId, sale.startsAt.getTime()])) === 1) restored.push(key);
    }
    return restored;
  }

  /** Items grouped by the group of their keys (their order's, their buyer's), so each group's keys go in one pipeline (one Redis Cluster slot). */
  private byGroup<T>(items: readonly T[], groupOf: (item: T) => string): Map<string, T[]> {
    const groups = new Map<string, T[]>();
    for (const item of items) {
      const group = groupOf(item);
      const inGroup = groups.get(group);
      if (inGroup) inGroup.push(item);
      else groups.set(group, [item]);
    }
    return groups;
  }

  /** The order as the intake accepted it, while its reservation holds its stock (a settled one keeps no more than its state). */
  async findAcceptedOrder(orderId: string): Promise<AcceptedOrder | null> {
    const group = this.keys.groupOfOrder(orderId);
    const stored = await this.readReservation(group, orderId);
    return stored?.state === 'reserved' ? toAcceptedOrder(orderId, stored) : null;
  }

  /** Whether an order is still in its group's accepted set: accepted and not yet marked persisted. */
  async awaitsPersisting(orderId: string): Promise<boolean> {
    return (await this.redis.zscore(this.keys.accepted(this.keys.groupOfOrder(orderId)), orderId)) !== null;
  }

  /** The worker calls this once an order is in MySQL, so recovery stops considering it (and its buyer's list reads it from MySQL). */
  async markPersisted(orders: ReadonlyArray<Pick<AcceptedOrder, 'orderId' | 'userId'>>): Promise<void> {
    if (orders.length === 0) return;
    const groups = this.byGroup(orders, (order) => this.keys.groupOfOrder(order.orderId));
    await Promise.all([...groups].map(([group, inGroup]) => this.redis.zrem(this.keys.accepted(group), ...inGroup.map((order) => order.orderId))));
  }

  /**
   * A buyer's orders accepted and not yet in MySQL, newest first by order id as their list reads
   * MySQL: those before `before` (an order id) that are `matching`, at most `limit`. Read from their
   * queued orders, each kept while its group's accepted set and its reservation hold it. One that
   * left (persisted, or refused after its claim listed it) leaves the buyer's queued orders here once
   * older than any checkout still under way, or with them a day after their last checkout: taken
   * out as each is persisted, they cost the drain a Redis command per order.
   */
  async queuedOrdersOf(userId: string, { before, limit, matching }: { before?: string; limit: number; matching: (order: AcceptedOrder) => boolean }): Promise<AcceptedOrder[]> {
    const key = this.keys.queuedOrders(this.keys.groupOf(userId), userId);
    const found: AcceptedOrder[] = [];
    const gone: string[] = [];
    const settledBefore = firstOrderIdAt(Date.now() - CLOCKS_APART_MS);
    for (let from = before === undefined ? '+' : `(${before}`; found.length < limit; ) {
      const wanted = limit - found.length;
      const listed = await this.redis.zrevrangebylex(key, from, '-', 'LIMIT', 0, wanted);
      const queued = await Promise.all(listed.map(async (orderId) => ((await this.awaitsPersisting(orderId)) ? this.findAcceptedOrder(orderId) : null)));
      listed.forEach((orderId, i) => {
        const order = queued[i];
        if (order && matching(order)) found.push(order);
        else if (!order && orderId < settledBefore) gone.push(orderId);
      });
      if (listed.length < wanted) break;
      from = `(${listed.at(-1)!}`;
    }
    if (gone.length > 0) await this.redis.zrem(key, ...gone);
    return found;
  }

  /**
   * Orders of `skuId` accepted from `from` until before `to` (Redis's clock) and still not in MySQL,
   * in every group: those whose reservation record names a line of the SKU, or no longer says (it
   * was released, or is gone). A group holding more than ACCEPTED_READ_AT_MOST orders of the window
   * (a backlog still draining) counts them all, unread.
   */
  async acceptedIn(skuId: string, from: Date, to: Date): Promise<number> {
    const counts = await Promise.all(
      this.keys.groups().map(async (group) => {
        const window = [this.keys.accepted(group), from.getTime(), `(${to.getTime()}`] as const;
        const orderIds = await this.redis.zrangebyscore(...window, 'LIMIT', 0, ACCEPTED_READ_AT_MOST + 1);
        if (orderIds.length > ACCEPTED_READ_AT_MOST) return this.redis.zcount(...window);
        if (orderIds.length === 0) return 0;
        const pipeline = this.redis.pipeline();
        for (const orderId of orderIds) pipeline.hget(this.keys.order(group, orderId), 'p');
        return ((await pipeline.exec()) ?? []).filter(([error, payload]) => {
          if (error) throw error;
          return payload === null || ((JSON.parse(payload as string) as { items?: Array<{ skuId: string }> }).items?.some((line) => line.skuId === skuId) ?? true);
        }).length;
      }),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /** Orders accepted and not yet in MySQL: the backlog the intake's high-water mark is about. */
  async acceptedBacklog(): Promise<number> {
    // every api reads it four times a second (QueueDepthSampler), where a command per group took 1.5 % of a core:
    // one script call on one server; on a cluster, whose groups are slots of their own, one pipeline per master
    const sets = this.keys.groups().map((group) => this.keys.accepted(group));
    if (!(this.redis instanceof Cluster)) return runStockScript(this.redis, 'countAccepted', sets, []);
    const counts = await pipelinedPerMaster(this.redis, sets, (pipeline, key) => pipeline.zcard(key));
    return counts.reduce<number>((sum, count) => sum + Number(count), 0);
  }

  /**
   * Orders of `group` accepted longer ago than `olderThanMs` and still not in MySQL, a `page`
   * of them, oldest first: their job was lost (an enqueue that failed after the reservation, a
   * flushed queue). The caller re-enqueues them. `withoutReservation`: such orders whose
   * reservation record is gone (evicted, or Redis lost data); only a job that still carries one
   * can persist it. One whose reservation is settled is in MySQL (only its row is paid or
   * closed): it leaves the set here, as its persisting would have taken it out, and is neither
   * (`settled` counts them, of the `read`).
   */
  async findStrandedOrders(
    group: string,
    now: Date,
    olderThanMs: number,
    page: SweepPage,
  ): Promise<{ stranded: AcceptedOrder[]; withoutReservation: string[]; read: number; settled: number }> {
    const stranded: AcceptedOrder[] = [];
    const withoutReservation: string[] = [];
    const ids = await this.redis.zrangebyscore(this.keys.accepted(group), '-inf', now.getTime() - olderThanMs, 'LIMIT', page.offset, page.limit);
    let settled = 0;
    for (const orderId of ids) {
      const stored = await this.readReservation(group, orderId);
      if (stored?.state === 'reserved') stranded.push(toAcceptedOrder(orderId, stored));
      else if (stored) settled += await this.redis.zrem(this.keys.accepted(group), orderId);
      else withoutReservation.push(orderId);
    }
    return { stranded, withoutReservation, read: ids.length, settled };
  }

  /** Takes an order out of the accepted set without persisting it; false if it had left already (persisted meanwhile). */
  async dropAcceptedOrder(orderId: string): Promise<boolean> {
    return (await this.redis.zrem(this.keys.accepted(this.keys.groupOfOrder(orderId)), orderId)) === 1;
  }

  /**
   * Refuses (SkuStockHeld) a SKU the catalog is about to create when Redis holds counters of
   * it with units reserved or sold: orders took them while the catalog had no such SKU (counters
   * written by hand, or left by a create from before the catalog committed first).
   */
  async refuseHeldLeftover(skuId: string): Promise<SkuStock[] | null> {
    const leftover = await this.bucketStock(skuId);
    if (leftover?.some((bucket) => bucket.reserved > 0 || bucket.sold > 0)) throw new SkuStockHeld(skuId);
    return leftover;
  }

  /**
   * Puts the counters of a SKU just created in the catalog, its stock split over its buckets.
   * Counters already there, of a SKU the catalog did not have, are replaced, so Redis sells what
   * MySQL records, unless orders reserved or sold units of them (SkuStockHeld, nothing changed).
   * Returns whether it replaced such counters.
   */
  async initSku(rules: SkuStockRules): Promise<boolean> {
    const buckets = bucketCountOf(rules);
    // every bucket checked before any is replaced; each script checks its own again, atomically
    const leftover = await this.refuseHeldLeftover(rules.skuId);
    const results = await this.writeOpeningStock(rules, 'replace');
    if (results.includes(-1)) throw new SkuStockHeld(rules.skuId);
    this.bucketCounts.set(rules.skuId, buckets);
    if (!leftover) return false;
    // the leftover's buckets beyond this create's are read by nothing any more; one key per
    // command, since on a cluster they sit in different slots
    await Promise.all(leftover.slice(buckets).map((_, i) => this.redis.del(this.keys.sku(this.keys.bucketGroup(buckets + i), rules.skuId))));
    this.announceReturned([rules.skuId]);
    return true;
  }

  /**
   * Puts the counters of a SKU the catalog has and whose create never wrote them (its api died
   * after the commit), each bucket only where Redis has none: one there is the create's own,
   * finishing meanwhile, and is left as it is. Returns whether it wrote any.
   */
  async publishUnpublishedSku(rules: SkuStockRules): Promise<boolean> {
    const results = await this.writeOpeningStock(rules, 'keep');
    this.bucketCounts.set(rules.skuId, bucketCountOf(rules));
    return results.some((result) => result > 0);
  }

  /**
   * Changes, adds or withdraws (`sale` null) the flash sale of every bucket of a SKU, each on
   * Redis's clock while no buyer has bought in it (changeSale-1.lua): refused with SaleAlreadyOpen
   * once the sale has opened or opens within SALE_CHANGE_CUTOFF_MS, or the new one would, and with
   * StockBucketLost while Redis has lost a bucket. A refusal by one bucket puts `previous` back on
   * the buckets already changed, so that they sell by the rules the catalog keeps; a change sent
   * again finds the buckets it reached changed, and changes the rest.
   */
  async changeSale(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, sale: SaleRules | null, previous: SaleRules | null): Promise<void> {
    await this.changeBucketSales(sku, sale, previous, '');
  }

  /**
   * Moves the end of the flash sale `previous` of every bucket of a SKU to `endsAt`, opened or not
   * (a running sale ended early), as changeSale does a change: refused with SaleEndTooClose when,
   * by Redis's clock, the sale's end or the new one is within SALE_CHANGE_CUTOFF_MS, so that every
   * bucket ends it at the same instant, well after each has it. The buyers' counts toward its limit
   * go at its former end, the one their checkouts saw, and count in no other sale (countsBySale): a
   * new sale may follow at the new end, except on a bucket whose counts do not name their sale.
   */
  async endSale(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, endsAt: Date, previous: SaleRules): Promise<void> {
    await this.changeBucketSales(sku, { ...previous, endsAt }, previous, '1');
  }

  private async changeBucketSales(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, sale: SaleRules | null, previous: SaleRules | null, endOnly: '' | '1'): Promise<void> {
    const keys = this.bucketKeysOf(sku);
    const replies = await Promise.allSettled(keys.map((key) => this.putSale(key, sale, SALE_CHANGE_CUTOFF_MS, endOnly)));
    const answers = replies.flatMap((reply) => (reply.status === 'fulfilled' ? [reply.value] : []));
    if (answers.length === keys.length && answers.every(([code]) => code! >= 0)) return;
    const changed = keys.filter((_, bucket) => replies[bucket]!.status === 'fulfilled' && (replies[bucket] as PromiseFulfilledResult<number[]>).value[0] === 1);
    await Promise.all(changed.map((key) => this.putSale(key, previous, -UNDO_CUTOFF_MS, '')));
    const failed = replies.find((reply): reply is PromiseRejectedResult => reply.status === 'rejected');
    if (failed) throw failed.reason;
    const lost = answers.flatMap(([code], bucket) => (code === -2 ? [bucket] : []));
    if (lost.length > 0) throw new StockBucketLost(sku.skuId, lost);
    if (endOnly) throw new SaleEndTooClose(sku.skuId, previous!.endsAt, sale!.endsAt);
    const opened = answers.filter(([code]) => code === -1);
    if (opened.length === 0) throw new SaleAlreadyOpen(sku.skuId, sale!.startsAt);
    throw new SaleAlreadyOpen(sku.skuId, new Date(opened[0]![1]!), new Date(Math.max(...opened.map((answer) => answer[2]!))));
  }

  /**
   * When a SKU's sale that has opened is over for good and a new one may replace it: at its end, on
   * a bucket whose buyers' counts name their sale (countsBySale: they count in no other); else when
   * the last of them goes, at its end, or at its former end for a sale ended early after it opened
   * (changeSale-1.lua's countedUntil, the latest of any bucket), and OLDER_SALE_COUNTS_KEPT_MS
   * later on a bucket whose sale was set before the counts went with it. A bucket Redis lost has
   * no counts: the stock repair recreates it with its counts from MySQL, which name the sale.
   */
  async saleOverForGoodAt(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, sale: SaleRules): Promise<Date> {
    const buckets = (await pipelinedEach(this.redis, this.bucketKeysOf(sku), (pipeline, key) => pipeline.hmget(key, 'deduction', 'countedUntil', 'countsEndWithSale', 'countsBySale'))) as Array<Array<string | null>>;
    const overAt = buckets.map(([deduction, countedUntil, countsEndWithSale, countsBySale]) =>
      countsBySale || !deduction
        ? sale.endsAt.getTime()
        : Math.max(sale.endsAt.getTime(), Number(countedUntil)) + (countsEndWithSale ? 0 : OLDER_SALE_COUNTS_KEPT_MS),
    );
    return new Date(Math.max(...overAt));
  }

  /**
   * Puts the catalog's sale on every bucket of a SKU, opened or not, so that Redis sells by the
   * sale the catalog prices by: the sale before a change that changeSale made and the catalog did
   * not take (its COMMIT failed), or the stock repair's correction of a change nobody finished. A
   * bucket Redis lost is left to the stock repair, which recreates it with the catalog's.
   */
  async putCatalogSale(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, sale: SaleRules | null): Promise<void> {
    await Promise.all(this.bucketKeysOf(sku).map((key) => this.putSale(key, sale, -UNDO_CUTOFF_MS)));
  }

  /**
   * Each bucket's flash-sale rules as the checkout reads them, per SKU, in the catalog's bucket
   * order; null for a bucket Redis lost (no counters, or none of the SKU's rules). One pipeline
   * per group and page: a group's keys share a hash tag.
   */
  async salesInBuckets(skus: ReadonlyArray<Pick<Sku, 'skuId' | 'stockBuckets'>>): Promise<Map<string, Array<BucketSale | null>>> {
    const sales = new Map(skus.map((sku) => [sku.skuId, [] as Array<BucketSale | null>]));
    for (let bucket = 0; bucket < MAX_STOCK_BUCKETS; bucket++) {
      const inBucket = skus.filter((sku) => bucket < (sku.stockBuckets ?? 1));
      if (inBucket.length === 0) break;
      const group = this.keys.bucketGroup(bucket);
      for (let start = 0; start < inBucket.length; start += READS_PER_PIPELINE) {
        const page = inBucket.slice(start, start + READS_PER_PIPELINE);
        const pipeline = this.redis.pipeline();
        for (const { skuId } of page) pipeline.hmget(this.keys.sku(group, skuId), 'deduction', 'saleStartsAt', 'saleEndsAt', 'perUserLimit', 'offSale');
        ((await pipeline.exec()) ?? []).forEach(([error, reply], i) => {
          if (error) throw error;
          const [deduction, startsAt, endsAt, perUserLimit, offSale] = reply as Array<string | null>;
          sales.get(page[i]!.skuId)!.push(deduction === null ? null : { startsAt: Number(startsAt ?? 0), endsAt: Number(endsAt ?? 0), perUserLimit: Number(perUserLimit ?? 0), offSale: offSale !== null });
        });
      }
    }
    return sales;
  }

  /**
   * Takes a SKU off sale in every bucket, or puts it back on sale (putOffSale-1.lua): off sale,
   * every checkout of it is refused, and what orders give back waits for its return to sale. A
   * bucket Redis lost is left as it is: the checkout refuses it until the stock repair recreates
   * it, as the catalog then has the SKU. Sent again, it changes what the first did not reach.
   */
  async putOffSale(sku: Pick<Sku, 'skuId' | 'stockBuckets'>, offSale: boolean): Promise<void> {
    await Promise.all(this.bucketKeysOf(sku).map((key) => runStockScript(this.redis, 'putOffSale', [key], [offSale ? '1' : ''])));
  }

  /** changeSale-1.lua on one bucket; undone with -UNDO_CUTOFF_MS, past the cutoff: the old sale may open within it now, and is what the catalog has. */
  private putSale(key: string, rules: SaleRules | null, cutoffMs: number, endOnly: '' | '1' = ''): Promise<number[]> {
    const sale = bucketSaleOf(rules);
    return runStockScript(this.redis, 'changeSale', [key], [sale.startsAt, sale.endsAt, sale.perUserLimit, cutoffMs, OLDER_SALE_COUNTS_KEPT_MS, endOnly]);
  }

  /** The hash of every bucket of a SKU, as many as the catalog says (one command each: on a cluster they sit in different slots). */
  private bucketKeysOf(sku: Pick<Sku, 'skuId' | 'stockBuckets'>): string[] {
    return Array.from({ length: sku.stockBuckets ?? 1 }, (_, bucket) => this.keys.sku(this.keys.bucketGroup(bucket), sku.skuId));
  }

  /** Each bucket's share of a created SKU's stock, with its rules, by initSku-1.lua in `mode`: the scripts' replies. */
  private async writeOpeningStock(rules: SkuStockRules, mode: 'replace' | 'keep'): Promise<number[]> {
    const buckets = bucketCountOf(rules);
    // 'keep' takes the stock generation (none yet, for a SKU just created), the one it gives transfers from, and whether
    // the catalog has it off sale (taken off sale before its first publish, which found no bucket to change)
    const kept = mode === 'keep' ? [0, 0, rules.offSale ? '1' : ''] : [];
    return Promise.all(
      splitStock(rules.available, buckets).map((share, bucket) =>
        runStockScript(this.redis, 'initSku', [this.keys.sku(this.keys.bucketGroup(bucket), rules.skuId)], [share, ...ruleArgs(rules, buckets, mode), ...kept]),
      ),
    );
  }

  /**
   * The stock repair's recreation of the buckets of a SKU that Redis lost: a bucket without
   * counters gets them, empty, with the SKU's rules; one holding counters without the rules
   * (which the checkout refuses) gets the rules; both get the SKU's stock generation, read
   * from the buckets Redis kept, with the generation they give transfers from (below it after a
   * set taken back). Every other bucket is left as it is, its counters and its orders' units in
   * them. Returns the buckets recreated or given their rules back, lowest first.
   * With a stock set of the SKU open, they get the generation before it: whatever it set in them
   * is gone, and finishing it sets them again (in its generation, setStock-1.lua skips them).
   */
  async recreateLostBuckets(rules: Omit<SkuStockRules, 'available'>): Promise<number[]> {
    const buckets = bucketCountOf(rules);
    const keys = Array.from({ length: buckets }, (_, bucket) => this.keys.sku(this.keys.bucketGroup(bucket), rules.skuId));
    const replies = (await pipelinedEach(this.redis, keys, (pipeline, key) => pipeline.hmget(key, 'generation', 'givesFrom', 'givesFromBefore'))) as Array<Array<string | null>>;
    const read = replies.map(([generation, givesFrom, givesFromBefore]) => ({
      generation: Number(generation ?? 0),
      givesFrom: givesFrom === null ? null : Number(givesFrom),
      givesFromBefore: givesFromBefore === null ? null : Number(givesFromBefore),
    }));
    const open = await this.openStockSet(rules.skuId);
    const generation = Math.min(Math.max(0, ...read.map((bucket) => bucket.generation)), open ? open.generation - 1 : Infinity);
    // after a set taken back the kept buckets give transfers taken before it (takeBackStockSet-1.lua):
    // a recreated bucket in their generation would void them, their units then lost from sale;
    // one recreated before an open set gives as the buckets it reached did before it
    const givesFromOf = (bucket: (typeof read)[number]): number[] => {
      if (bucket.generation === generation) return [bucket.givesFrom ?? generation];
      return bucket.generation === generation + 1 && bucket.givesFromBefore !== null ? [bucket.givesFromBefore] : [];
    };
    const givesFrom = Math.min(generation, ...read.flatMap(givesFromOf));
    const results = await Promise.all(keys.map((key) => runStockScript(this.redis, 'initSku', [key], [0, ...ruleArgs(rules, buckets, 'keep'), generation, givesFrom, rules.offSale ? '1' : ''])));
    this.bucketCounts.set(rules.skuId, buckets);
    return results.flatMap((result, bucket) => (result > 0 ? [bucket] : []));
  }

  /**
   * Moves a SKU's counters by these amounts: the stock reconciler's repair to what the
   * ledger says, a stock set taken back after MySQL refused it. A SKU split into buckets
   * gets what is added in bucket `into` (0 unless the repair names a bucket it recreated;
   * the rebalancer spreads it); sellable units taken away come out of each bucket in turn,
   * bucket 0 first, none below zero: taken from bucket 0 alone, it went negative while the
   * other buckets went on selling units that were no longer there. Units put back on sale
   * are announced, like any units given back. Returns the sellable units it could not take
   * (reserved meanwhile): drift that the reconciler goes on reporting.
   */
  async correctCounters(skuId: string, by: SkuStock, { into = 0 } = {}): Promise<number> {
    // each step once (correctBucket-2.lua): a step sent again after a lost connection does not move the counters twice
    const correctionId = randomUUID();
    const step = (bucket: number, name: 'add' | 'take', take: number, add: SkuStock) => {
      const group = this.keys.bucketGroup(bucket);
      const keys = [this.keys.correctionStep(group, correctionId, name), this.keys.sku(group, skuId)];
      return runStockScript(this.redis, 'correctBucket', keys, [CORRECTION_MARKER_TTL_MS, take, add.available, add.reserved, add.sold]);
    };
    const added = { available: Math.max(by.available, 0), reserved: by.reserved, sold: by.sold };
    if (added.available !== 0 || added.reserved !== 0 || added.sold !== 0) await step(into, 'add', 0, added);
    let untaken = Math.max(-by.available, 0);
    const buckets = untaken > 0 ? ((await this.bucketsOf([skuId])).get(skuId) ?? 1) : 0;
    for (let bucket = 0; bucket < buckets && untaken > 0; bucket++) {
      untaken -= await step(bucket, 'take', untaken, { available: 0, reserved: 0, sold: 0 });
    }
    if (by.available > 0) this.announceReturned([skuId]);
    return untaken;
  }

  /**
   * Sets the sellable quantity, split over the SKU's buckets like its opening stock;
   * reservations already taken stay as they are. Returns the previous quantity (all
   * buckets), or null for an unknown SKU. Throws StockSetUnderWay while another set of the
   * SKU is open (finish it first), or when one started since the SKU's generation was read;
   * StockBucketLost while Redis has lost any of its buckets.
   *
   * Bucket 0 is set first: its set starts the SKU's next stock generation, which the
   * other buckets' sets then carry. A transfer between buckets under way meanwhile gives
   * its units only within the generation it took them in (giveStock-2.lua), so the new
   * quantity never has units taken before it added on top. Sets of one SKU must not
   * overlap (the catalog holds the SKU's row lock around this call).
   *
   * Bucket 0 records the set, open, until `closeStockSet`: one whose other buckets were never
   * reached (an answer that did not come, a process gone) is finished by `completeStockSet`,
   * or its buckets would stay in different generations, and the transfers between them
   * would wait, or be voided, for good.
   */
  async setAvailable(skuId: string, available: number, { ref, now }: { ref: string; now: Date }): Promise<number | null> {
    const held = await this.readBuckets(skuId);
    if (!held[0]) return null;
    // checked before the set starts, so it is refused whole; one lost after this waits, open (setOtherBuckets)
    const lost = held.flatMap((bucket, i) => (bucket?.ruled ? [] : [i]));
    if (lost.length > 0) throw new StockBucketLost(skuId, lost);
    const buckets = held.length;
    const first = this.keys.sku(this.keys.bucketGroup(0), skuId);
    const generation = Number((await this.redis.hget(first, 'generation')) ?? 0) + 1;
    const [share] = splitStock(available, buckets);
    // on the connection the replica wait goes on (awaitStockSetReplicas): the wait covers this write
    const [previous, started] = await runStockScript(this.reserving, 'startStockSet', [first, this.keys.openStockSets()], [share!, generation, ref, available, skuId, now.getTime()]);
    if (previous === -1) return null;
    if (previous === -2) throw new StockSetUnderWay(skuId);
    return previous + (await this.setOtherBuckets({ skuId, stock: available, ref, generation: started }, buckets));
  }

  /** The SKU's stock set that is open (started and not closed), or null. */
  async openStockSet(skuId: string): Promise<StockSet | null> {
    return (await this.recordedStockSet(skuId))?.set ?? null;
  }

  /** Stock sets started longer ago than `olderThanMs` and not closed: left half-done, or still under way. */
  async openStockSets(now: Date, olderThanMs: number): Promise<StockSet[]> {
    const skuIds = await this.redis.zrangebyscore(this.keys.openStockSets(), '-inf', now.getTime() - olderThanMs);
    const sets = await Promise.all(skuIds.map((skuId) => this.openStockSet(skuId)));
    return sets.filter((set): set is StockSet => set !== null);
  }

  /**
   * Runs an open set in the buckets it has not reached (those it has answer as they did) and
   * returns the previous quantity, as `setAvailable` would have: the caller holds the SKU's row
   * lock and writes the set's ledger row with it. StockSetClosed when it was closed meanwhile;
   * StockBucketLost, the set left open, while Redis has lost a bucket it has not reached.
   * `recreate` (the stock repair's) runs once the set is found still open, before the buckets are set.
   */
  async completeStockSet(set: StockSet, recreate?: () => Promise<void>): Promise<number> {
    const recorded = await this.recordedStockSet(set.skuId);
    if (recorded?.set.ref !== set.ref) throw new StockSetClosed(set.skuId);
    await recreate?.();
    const buckets = (await this.bucketsOf([set.skuId])).get(set.skuId)!;
    return recorded.previous + (await this.setOtherBuckets(recorded.set, buckets));
  }

  /**
   * Takes back the SKU's open set `ref` that MySQL refused: the transfers it would void are
   * given in every bucket it reached (takeBackStockSet-1.lua), before it is closed, so no give
   * voids them meanwhile; then the counters go back to `previous`, what the buckets held
   * before it. Returns the units that could not be taken (reserved meanwhile).
   */
  async takeBackStockSet({ skuId, ref }: Pick<StockSet, 'skuId' | 'ref'>, previous: number, stock: number): Promise<number> {
    const open = await this.openStockSet(skuId);
    if (open?.ref === ref) {
      const buckets = (await this.bucketsOf([skuId])).get(skuId)!;
      await Promise.all(
        Array.from({ length: buckets }, (_, bucket) => runStockScript(this.redis, 'takeBackStockSet', [this.keys.sku(this.keys.bucketGroup(bucket), skuId)], [open.generation])),
      );
    }
    await this.closeStockSet({ skuId, ref });
    return this.correctCounters(skuId, { available: previous - stock, reserved: 0, sold: 0 });
  }

  /** The SKU's latest stock generation whose set is closed (kept, or taken back): bucket 0's, or the one before while its set is open. */
  private async closedStockGeneration(skuId: string): Promise<number> {
    // one MULTI: both keys are bucket 0's group's
    const [generation, open] = (await this.redis.multi().hget(this.keys.sku(this.keys.bucketGroup(0), skuId), 'generation').zscore(this.keys.openStockSets(), skuId).exec()) ?? [];
    if (!generation || !open) throw new Error(`no reply to the read of ${skuId}'s stock generation`);
    if (generation[0] || open[0]) throw generation[0] ?? open[0];
    return Number(generation[1] ?? 0) - (open[1] === null ? 0 : 1);
  }

  /** The set's MySQL side is done, or it was taken back: nothing finishes it any more. */
  async closeStockSet(set: Pick<StockSet, 'skuId' | 'ref'>): Promise<void> {
    await runStockScript(this.redis, 'closeStockSet', [this.keys.sku(this.keys.bucketGroup(0), set.skuId), this.keys.openStockSets()], [set.ref, set.skuId]);
  }

  /** The set every bucket but 0 gets (`set.generation`'s), once; returns what they held before it. StockBucketLost while one is lost. */
  private async setOtherBuckets(set: StockSet, buckets: number): Promise<number> {
    const [, ...rest] = splitStock(set.stock, buckets);
    const others = await Promise.all(
      rest.map((share, i) => runStockScript(this.reserving, 'setStock', [this.keys.sku(this.keys.bucketGroup(i + 1), set.skuId)], [share, set.generation])),
    );
    // sets of a SKU run one at a time, each open one finished before the next starts
    if (others.some(([previous]) => previous === -2)) throw new Error(`a stock set of ${set.skuId} after generation ${set.generation} reached its buckets first`);
    // what a lost bucket held is known to the ledger alone: the set waits, open, for the repair to recreate it
    const lost = others.flatMap(([previous], i) => (previous === -1 ? [i + 1] : []));
    if (lost.length > 0) throw new StockBucketLost(set.skuId, lost);
    this.announceReturned([set.skuId]);
    return others.reduce((sum, [units]) => sum + units, 0);
  }

  /** The open set bucket 0 records, with what bucket 0 held before it; an entry whose record Redis lost is closed. */
  private async recordedStockSet(skuId: string): Promise<{ set: StockSet; previous: number } | null> {
    // one MULTI: both keys are bucket 0's group's
    const [record, open] = (await this.redis.multi().hmget(this.keys.sku(this.keys.bucketGroup(0), skuId), 'setRef', 'setStock', 'generation', 'setFrom').zscore(this.keys.openStockSets(), skuId).exec()) ?? [];
    if (!record || !open) throw new Error(`no reply to the read of ${skuId}'s stock set`);
    if (record[0] || open[0]) throw record[0] ?? open[0];
    if (open[1] === null) return null;
    const [ref, stock, generation, previous] = record[1] as Array<string | null>;
    if (!ref) {
      await this.closeStockSet({ skuId, ref: '' });
      return null;
    }
    return { set: { skuId, stock: Number(stock), ref, generation: Number(generation) }, previous: Number(previous) };
  }

  /** The SKU's counters summed over its buckets; null for an unknown SKU. */
  async getSkuStock(skuId: string): Promise<SkuStock | null> {
    const buckets = await this.bucketStock(skuId);
    return buckets && summedBuckets(buckets);
  }

  /** Each bucket's counters, bucket 0 first (a bucket without counters holds none); null for an unknown SKU. */
  async bucketStock(skuId: string): Promise<SkuStock[] | null> {
    const buckets = await this.readBuckets(skuId);
    if (!buckets[0]) return null;
    return buckets.map((bucket) => bucket?.stock ?? { available: 0, reserved: 0, sold: 0 });
  }

  /**
   * Each bucket's counters, bucket 0 first, null for a bucket Redis lost: no counters, or
   * counters without the SKU's rules, whose buyers the checkout refuses until the stock
   * repair recreates it. Null for an unknown SKU.
   */
  async bucketStockOrLost(skuId: string): Promise<Array<SkuStock | null> | null> {
    const buckets = await this.readBuckets(skuId);
    if (!buckets[0]) return null;
    return buckets.map((bucket) => (bucket?.ruled ? bucket.stock : null));
  }

  private async readBuckets(skuId: string): Promise<Array<{ stock: SkuStock; ruled: boolean } | null>> {
    const buckets = (await this.bucketsOf([skuId])).get(skuId)!;
    const keys = Array.from({ length: buckets }, (_, bucket) => this.keys.sku(this.keys.bucketGroup(bucket), skuId));
    const replies = (await pipelinedEach(this.redis, keys, (pipeline, key) => pipeline.hmget(key, 'available', 'reserved', 'sold', 'deduction'))) as Array<Array<string | null>>;
    return replies.map(([available, reserved, sold, deduction]) =>
      available === null || available === undefined
        ? null
        : { stock: { available: Number(available), reserved: Number(reserved), sold: Number(sold) }, ruled: deduction !== null && deduction !== undefined },
    );
  }

  /**
   * The giving side of a transfer: takes up to `qty` available units off bucket `from`,
   * once per transfer id. Returns the transfer with what was taken (for a repeated id,
   * what the first call took) and the bucket's stock generation then.
   */
  async takeForTransfer(transfer: StockTransfer, now: Date): Promise<TakenTransfer> {
    const group = this.keys.bucketGroup(transfer.from);
    const keys = [this.keys.sku(group, transfer.skuId), this.keys.transfer(group, transfer.transferId), this.keys.openTransfers(group)];
    const [qty, generation] = await runStockScript(this.redis, 'takeStock', keys, [transfer.transferId, transfer.qty, transfer.skuId, transfer.to, now.getTime(), TRANSFER_RECORD_TTL_MS]);
    return { ...transfer, qty, generation };
  }

  /**
   * The receiving side: adds the transfer's units to bucket `to` once per transfer id,
   * or voids the transfer when a stock set overrode them (GiveOutcome), once that set is
   * closed: while open it may yet be taken back, and the transfer waits.
   */
  async giveForTransfer(transfer: TakenTransfer): Promise<GiveOutcome> {
    const group = this.keys.bucketGroup(transfer.to);
    const keys = [this.keys.sku(group, transfer.skuId), this.keys.transfer(group, transfer.transferId)];
    const closed = await this.closedStockGeneration(transfer.skuId);
    const code = await runStockScript(this.redis, 'giveStock', keys, [transfer.qty, transfer.generation, closed]);
    const outcome = GIVE_OUTCOMES[code];
    if (!outcome) throw new Error(`giveStock answered an unknown code ${String(code)}`);
    if (outcome === 'given') this.announceReturned([transfer.skuId]);
    return outcome;
  }

  /**
   * Both sides are done (and recorded): the transfer leaves the open set, and its record and the
   * receiving side's marker expire later (the marker, in another slot, by a command of its own).
   */
  async closeTransfer(transfer: StockTransfer): Promise<void> {
    const group = this.keys.bucketGroup(transfer.from);
    await this.redis.multi().zrem(this.keys.openTransfers(group), transfer.transferId).pexpire(this.keys.transfer(group, transfer.transferId), TRANSFER_RECORD_TTL_MS).exec();
    await this.redis.pexpire(this.keys.transfer(this.keys.bucketGroup(transfer.to), transfer.transferId), TRANSFER_RECORD_TTL_MS);
  }

  /** Transfers taken longer ago than `olderThanMs` and not closed, in every group, each with what its receiving side did. */
  async openTransfers(now: Date, olderThanMs = 0): Promise<OpenTransfer[]> {
    const open: OpenTransfer[] = [];
    for (const [from, group] of this.keys.groups().entries()) {
      const ids = await this.redis.zrangebyscore(this.keys.openTransfers(group), '-inf', now.getTime() - olderThanMs);
      for (const transferId of ids) {
        const [qty, generation, skuId, to] = await this.redis.hmget(this.keys.transfer(group, transferId), 'q', 'g', 'sku', 'to');
        if (!qty || !skuId || !to) continue;
        const marker = await this.redis.get(this.keys.transfer(this.keys.bucketGroup(Number(to)), transferId));
        const state = marker === null ? 'taken' : marker === VOIDED_MARKER ? 'voided' : 'given';
        open.push({ transferId, skuId, from, to: Number(to), qty: Number(qty), generation: Number(generation ?? 0), state });
      }
    }
    return open;
  }

  private async readReservation(group: string, orderId: string): Promise<StoredReservation | SettledReservation | null> {
    const [userId, type, deadline, state, payload, acceptedAt] = await this.redis.hmget(
      this.keys.order(group, orderId),
      'u',
      't',
      'd',
      's',
      'p',
      'a',
    );
    if (state === 'committed' || state === 'released') return { state };
    if (!userId || !payload) return null;
    return {
      state: 'reserved',
      userId,
      type: type as OrderType,
      deadline: Number(deadline),
      acceptedAt: Number(acceptedAt),
      payload: JSON.parse(payload) as StoredReservation['payload'],
    };
  }
}

function bucketCountOf(rules: Pick<SkuStockRules, 'buckets'>): number {
  const buckets = rules.buckets ?? 1;
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_STOCK_BUCKETS) throw new Error(`a SKU has 1 to ${MAX_STOCK_BUCKETS} stock buckets, not ${buckets}`);
  return buckets;
}

/** A SKU's counters summed over its buckets (bucketStock's reading). */
export function summedBuckets(buckets: readonly SkuStock[]): SkuStock {
  const total = { available: 0, reserved: 0, sold: 0 };
  for (const bucket of buckets) {
    total.available += bucket.available;
    total.reserved += bucket.reserved;
    total.sold += bucket.sold;
  }
  return total;
}

/** initSku-1.lua's ARGV after the available quantity. */
function ruleArgs(rules: Omit<SkuStockRules, 'skuId' | 'available'>, buckets: number, mode: 'replace' | 'keep'): Array<string | number> {
  return [rules.deduction, rules.saleStartsAt?.getTime() ?? 0, rules.saleEndsAt?.getTime() ?? 0, rules.perUserLimit, buckets, mode, rules.orderType ?? 'standard'];
}

function toAcceptedOrder(orderId: string, stored: StoredReservation): AcceptedOrder {
  return {
    orderId,
    userId: stored.userId,
    type: stored.type,
    items: stored.payload.items,
    address: stored.payload.address,
    couponCode: stored.payload.couponCode,
    acceptedAt: new Date(stored.acceptedAt).toISOString(),
    paymentDeadline: new Date(stored.deadline).toISOString(),
    idempotencyKey: stored.payload.idempotencyKey ?? null,
    bodyHash: stored.payload.bodyHash ?? null,
  };
}
