import { DomainError, priceOrder, type AcceptedOrder, type Coupon, type MemberLevel, type PricingRules, type Sku, type ThresholdPromotion } from '@orders/domain';
import { sql, type Selectable, type Transaction } from 'kysely';
import type { OrderDb } from './connection.js';
import type { CouponsTable, Database, PromotionsTable } from './schema.js';
import { isDuplicateKey } from './mysql-errors.js';

export class PricingRuleExists extends DomainError {
  readonly code = 'CONFLICT';
  constructor(what: string) {
    super(`${what} already exists`);
  }
}

/**
 * The most promotions whose windows overlap over a SKU: each one an order takes is a share on its
 * lines' and the order's benefits (TEXT columns, 64 KiB: ~600 shares), so more stacked on one cart
 * made an order the checkout accepted that MySQL could never take.
 */
export const MAX_OVERLAPPING_PROMOTIONS = 100;

export class TooManyPromotions extends DomainError {
  readonly code = 'CONFLICT';
  constructor(overlapping: readonly string[]) {
    super(
      `At most ${MAX_OVERLAPPING_PROMOTIONS} promotions may overlap in time over a SKU: ${overlapping.length} already overlap this one's window on its SKUs (${overlapping.slice(0, 5).join(', ')}${overlapping.length > 5 ? ', …' : ''})`,
    );
  }
}

export class UnknownMemberLevel extends DomainError {
  readonly code = 'VALIDATION_FAILED';
  constructor(level: string) {
    super(`There is no member level '${level}'`);
  }
}

/** Promotions, coupons, member levels and shipping fees: what workers price orders with besides the catalog. */
export class PricingRepository {
  constructor(private readonly db: OrderDb) {}

  /** Dated by `clock` (the intake's): orders accepted before it are priced without the promotion. */
  async createPromotion(promotion: ThresholdPromotion, clock: AcceptanceClock): Promise<void> {
    try {
      await this.changeRules(clock, { movesEveryBatch: true }, async (trx, createdAt) => {
        // under the rules' version row: promotions created at once are counted one after the other
        const covered = promotion.skuIds;
        const overlapping = (await trx.selectFrom('promotions').select(['promotion_id', 'sku_ids']).where('ends_at', '>', promotion.startsAt).where('starts_at', '<', promotion.endsAt).orderBy('promotion_id').execute())
          .filter((row) => row.sku_ids === null || covered === null || (JSON.parse(row.sku_ids) as string[]).some((skuId) => covered.includes(skuId)))
          .map((row) => row.promotion_id);
        if (overlapping.length >= MAX_OVERLAPPING_PROMOTIONS) throw new TooManyPromotions(overlapping);
        await trx
          .insertInto('promotions')
          .values({
            promotion_id: promotion.promotionId,
            title: promotion.title,
            threshold_cents: promotion.thresholdCents,
            off_cents: promotion.offCents,
            sku_ids: promotion.skuIds === null ? null : JSON.stringify(promotion.skuIds),
            starts_at: promotion.startsAt,
            ends_at: promotion.endsAt,
            created_at: createdAt,
          })
          .execute();
      });
    } catch (error) {
      if (isDuplicateKey(error)) throw new PricingRuleExists(`Promotion ${promotion.promotionId}`);
      throw error;
    }
  }

  /**
   * Ends a promotion now, dated by `clock` (the intake's) as every change of the rules is: orders
   * accepted from then on are priced without it, those accepted before keep it, however long they
   * wait in the queue. One not started yet ends at its start (it never runs); one ended keeps its
   * end. The promotion as it stands after, or null when there is none of that id.
   */
  async endPromotion(promotionId: string, clock: AcceptanceClock): Promise<ThresholdPromotion | null> {
    let ended: ThresholdPromotion | null = null;
    await this.changeRules(clock, { movesEveryBatch: true }, async (trx, at) => {
      const row = await trx.selectFrom('promotions').selectAll().where('promotion_id', '=', promotionId).forUpdate().executeTakeFirst();
      if (!row) return;
      // a millisecond after `at`: an order accepted in the millisecond the end was dated, before it, keeps the promotion (as endCoupon-1.lua's coupon)
      const endsAt = new Date(Math.max(row.starts_at.getTime(), Math.min(row.ends_at.getTime(), at.getTime() + 1)));
      if (endsAt.getTime() < row.ends_at.getTime()) {
        await trx.updateTable('promotions').set({ ends_at: endsAt }).where('promotion_id', '=', promotionId).execute();
        // a row batches may have read changed, not inserted: every batch priced before is priced again
        await trx.updateTable('pricing_rules_version').set((eb) => ({ promotion_ends: eb('promotion_ends', '+', 1) })).where('id', '=', 1).execute();
      }
      ended = promotionOf({ ...row, ends_at: endsAt });
    });
    return ended;
  }

  /**
   * Ends a coupon in MySQL at `endsAt`, the end checkout's copy in Redis was given
   * (Inventory.endCoupon), so the worker prices the orders accepted with it before that by it. One
   * not started yet ends at its start; one ended keeps its end. The coupon as it stands after, or
   * null when there is none of that code.
   */
  async endCoupon(code: string, endsAt: Date): Promise<Coupon | null> {
    await this.db
      .updateTable('coupons')
      .set({ ends_at: sql<Date>`GREATEST(starts_at, LEAST(ends_at, ${endsAt}))` })
      .where('code', '=', code)
      .execute();
    return this.findCoupon(code);
  }

  /**
   * Inserts the coupon and, once it is committed, runs `publish` (checkout's copy in Redis). Never
   * the other way round: a copy in Redis of a coupon whose commit was then lost (its api killed,
   * MySQL failing the commit) took buyers' uses at checkout, and the worker, finding no coupon,
   * charged them full price. A coupon committed whose publish never ran (not `published` yet) is
   * published by the same create sent again, or by the stock repair, which publishes every coupon in force.
   * One MySQL records a use of was published before, and Redis has lost it: published again here it
   * would count no use taken (a first-so-many coupon sold again from its first), so only the repair,
   * which counts them from MySQL, brings it back.
   */
  async createCoupon(coupon: Coupon, publish: () => Promise<void>, published: () => Promise<boolean>): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('coupons')
          .values({
            code: coupon.code,
            kind: coupon.kind,
            percent_off: coupon.percentOff,
            off_cents: coupon.offCents,
            min_spend_cents: coupon.minSpendCents,
            per_buyer_limit: coupon.perBuyerLimit,
            total_limit: coupon.totalLimit ?? 0,
            starts_at: coupon.startsAt,
            ends_at: coupon.endsAt,
          })
          .execute();
      });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      if ((await published()) || !(await this.couponStoredAs(coupon)) || (await this.couponEverUsed(coupon.code))) throw new PricingRuleExists(`Coupon ${coupon.code}`);
    }
    await publish();
  }

  async findCoupon(code: string): Promise<Coupon | null> {
    const row = await this.db.selectFrom('coupons').selectAll().where('code', '=', code).executeTakeFirst();
    return row ? couponOf(row) : null;
  }

  /** Whether an order MySQL has took a use of the coupon, held still or given back. */
  private async couponEverUsed(code: string): Promise<boolean> {
    return (await this.db.selectFrom('coupon_redemptions').select('order_id').where('code', '=', code).limit(1).executeTakeFirst()) !== undefined;
  }

  /** Whether MySQL holds the coupon exactly as asked. */
  private async couponStoredAs(coupon: Coupon): Promise<boolean> {
    const row = await this.db.selectFrom('coupons').selectAll().where('code', '=', coupon.code).executeTakeFirst();
    return (
      row !== undefined &&
      row.kind === coupon.kind &&
      Number(row.percent_off) === coupon.percentOff &&
      Number(row.off_cents) === coupon.offCents &&
      Number(row.min_spend_cents) === coupon.minSpendCents &&
      row.per_buyer_limit === coupon.perBuyerLimit &&
      row.total_limit === (coupon.totalLimit ?? 0) &&
      row.starts_at.getTime() === coupon.startsAt.getTime() &&
      row.ends_at.getTime() === coupon.endsAt.getTime()
    );
  }

  /**
   * The level as it is from its change on (by `clock`, the intake's); orders accepted before keep the value they were accepted under.
   * Never from before the change it replaces (takesEffectAt): the last change is the level's value from then on.
   */
  async setMemberLevel(level: MemberLevel, clock: AcceptanceClock): Promise<void> {
    await this.changeRules(clock, { movesEveryBatch: true }, async (trx, at) => {
      // first: the row's lock orders the changes of one level, so the read below sees the one before
      await trx
        .insertInto('member_levels')
        .values({ level: level.level, discount_percent: level.discountPercent, free_shipping: level.freeShipping })
        .onDuplicateKeyUpdate({ discount_percent: level.discountPercent, free_shipping: level.freeShipping })
        .execute();
      const effectiveFrom = await takesEffectAt(trx, 'member_level_history', level.level, at);
      await trx
        .insertInto('member_level_history')
        .values({ level: level.level, discount_percent: level.discountPercent, free_shipping: level.freeShipping, effective_from: effectiveFrom })
        .execute();
    });
  }

  /** Throws UnknownMemberLevel (changing nothing) for a level that was never defined. In force from its change on, as setMemberLevel. */
  async setMember(userId: string, level: string, clock: AcceptanceClock): Promise<void> {
    const known = await this.db.selectFrom('member_levels').select('level').where('level', '=', level).executeTakeFirst();
    if (!known) throw new UnknownMemberLevel(level);
    // one buyer's level prices that buyer's orders alone: batches of others' are not priced again (holdRulesVersion counts its changes)
    await this.changeRules(clock, { movesEveryBatch: false }, async (trx, at) => {
      // first: the row's lock orders the changes of one buyer, so the read below sees the one before
      await trx.insertInto('members').values({ user_id: userId, level }).onDuplicateKeyUpdate({ level }).execute();
      const effectiveFrom = await takesEffectAt(trx, 'member_history', userId, at);
      await trx.insertInto('member_history').values({ user_id: userId, level, effective_from: effectiveFrom }).execute();
    });
  }

  async setShippingFee(warehouseId: string, feeCents: number, clock: AcceptanceClock): Promise<void> {
    await this.changeRules(clock, { movesEveryBatch: true }, async (trx, at) => {
      // first: the row's lock orders the changes of one warehouse's fee, so the read below sees the one before
      await trx.insertInto('warehouse_shipping').values({ warehouse_id: warehouseId, fee_cents: feeCents }).onDuplicateKeyUpdate({ fee_cents: feeCents }).execute();
      const effectiveFrom = await takesEffectAt(trx, 'shipping_fee_history', warehouseId, at);
      await trx.insertInto('shipping_fee_history').values({ warehouse_id: warehouseId, fee_cents: feeCents, effective_from: effectiveFrom }).execute();
    });
  }

  /**
   * A change of the rules, dated by `clock` once it holds the rules' version row. Dated before, it
   * could be committed after a batch priced orders accepted since its date by the rules it replaced,
   * while its history says it was in force for them. Holding the row, it waits for the batches
   * being written to commit (each holds it shared, holdRulesVersion), so its date comes after their
   * orders' acceptance; and a batch priced before it commits, holding the row next, finds the
   * version moved on and is priced again. A change of rules every order may be priced by moves
   * the version (`movesEveryBatch`); one buyer's level moves nothing, and only the batches
   * holding that buyer's orders find it (holdRulesVersion): a script changing many buyers'
   * levels during a sale would otherwise send every batch back to be priced, again and again.
   */
  private async changeRules(clock: AcceptanceClock, { movesEveryBatch }: { movesEveryBatch: boolean }, change: (trx: Transaction<Database>, at: Date) => Promise<void>): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (movesEveryBatch) await trx.updateTable('pricing_rules_version').set((eb) => ({ version: eb('version', '+', 1) })).where('id', '=', 1).execute();
      else await sql`SELECT version FROM pricing_rules_version WHERE id = 1 FOR UPDATE`.execute(trx);
      await change(trx, await clock());
    });
  }

  /**
   * The rules each order of a batch is priced with, once per order id, as they stood when
   * the order was accepted: promotions created by then, the buyer's level, the level's
   * discount and the shipping fees in force then. The coupon needs no such check: checkout
   * refuses a code that does not exist yet. A coupon is offered to an order only while its
   * buyer has uses left, counting the orders of this batch that come before it and take it
   * (takesCoupon: a cart of flash-sale lines alone, or below the minimum spend, is offered it
   * and takes no use, as its checkout held none, so the buyer's next order keeps it); a batch
   * persisted since that took the uses makes the batch's own transaction refuse them
   * (OrderRepository.persistAcceptedOrders), and the orders are priced again. So are they when the
   * rules changed after `version` was read, their batch being written holding it (holdRulesVersion).
   */
  async rulesFor(orders: readonly AcceptedOrder[], skus: ReadonlyMap<string, Sku>): Promise<RulesAtAcceptance> {
    const warehouseIds = [...new Set([...skus.values()].map((sku) => sku.warehouseId))];
    // before the rules: read after them, it could count a change their reads missed
    const { version, promotion_ends: promotionEnds } = await this.db.selectFrom('pricing_rules_version').select(['version', 'promotion_ends']).where('id', '=', 1).executeTakeFirstOrThrow();
    const codes = [...new Set(orders.flatMap((o) => (o.couponCode ? [o.couponCode] : [])))];
    const userIds = [...new Set(orders.map((o) => o.userId))];
    const acceptedTimes = orders.map((o) => Date.parse(o.acceptedAt));
    const earliest = new Date(Math.min(...acceptedTimes));
    const latest = new Date(Math.max(...acceptedTimes));
    const memberRowsRead = this.db
      .selectFrom('member_history')
      .select(['user_id', 'level', 'effective_from'])
      .where('user_id', 'in', userIds)
      .where('effective_from', '<=', latest)
      .orderBy('effective_from')
      .orderBy('change_id')
      .execute();
    // the levels those rows name, read after them: read beside them, a buyer's change committed
    // between the two reads (it moves no version) would price the order with no level at all
    const levelRowsRead = memberRowsRead.then((rows) => {
      const named = [...new Set(rows.map((row) => row.level))];
      return named.length === 0
        ? []
        : levelChangesRead(this.db, { levels: named, acceptedUntil: latest })
            .select(['level', 'discount_percent', 'free_shipping', 'effective_from'])
            .orderBy('effective_from')
            .orderBy('change_id')
            .execute();
    });
    const [promotionRows, couponRows, memberRows, levelRows, feeRows, usedRows, writtenRows] = await Promise.all([
      promotionsRead(this.db, { acceptedFrom: earliest, acceptedUntil: latest }).selectAll().execute(),
      codes.length === 0 ? [] : this.db.selectFrom('coupons').selectAll().where('code', 'in', codes).execute(),
      memberRowsRead,
      levelRowsRead,
      warehouseIds.length === 0
        ? []
        : feeChangesRead(this.db, { warehouses: warehouseIds, acceptedUntil: latest })
            .select(['warehouse_id', 'fee_cents', 'effective_from'])
            .orderBy('effective_from')
            .orderBy('change_id')
            .execute(),
      codes.length === 0
        ? []
        : this.db
            .selectFrom('coupon_redemptions')
            .select(['code', 'user_id', 'order_id'])
            .where('code', 'in', codes)
            .where('user_id', 'in', userIds)
            .where('status', '=', 'used')
            .execute(),
      codes.length === 0
        ? []
        : this.db
            .selectFrom('orders')
            .select('order_id')
            .where('order_id', 'in', orders.map((o) => o.orderId))
            .execute(),
    ]);
    const promotions = promotionRows.map((row) => ({ createdAt: row.created_at, promotion: promotionOf(row) }));
    const coupons = new Map(couponRows.map((row): [string, Coupon] => [row.code, couponOf(row)]));
    const memberships = historyBy(memberRows, (row) => row.user_id);
    const levels = historyBy(levelRows, (row) => row.level);
    const fees = historyBy(feeRows, (row) => row.warehouse_id);
    // Uses by every order MySQL has, those of this batch already written (a redelivery) among them. Those
    // are ruled as they were written: the coupon where it took a use, none where it did not (not applied,
    // given back), and no use counted again; offered anew, one would take the use of a new order beside it.
    const written = new Set(writtenRows.map((row) => row.order_id));
    const redeemed = new Set(usedRows.map((row) => row.order_id));
    const used = new Map<string, number>();
    for (const row of usedRows) used.set(`${row.code}\u0000${row.user_id}`, (used.get(`${row.code}\u0000${row.user_id}`) ?? 0) + 1);
    const rules = new Map<string, PricingRules>();
    for (const order of orders) {
      // a replayed checkout can bring the same order twice: ruled again, its own use of the coupon would count against it
      if (rules.has(order.orderId)) continue;
      const acceptedAt = new Date(order.acceptedAt);
      let coupon = order.couponCode ? (coupons.get(order.couponCode) ?? null) : null;
      const usesKey = `${order.couponCode}\u0000${order.userId}`;
      if (coupon && written.has(order.orderId)) {
        if (!redeemed.has(order.orderId)) coupon = null;
      } else if (coupon && (used.get(usesKey) ?? 0) >= coupon.perBuyerLimit) coupon = null;
      const membership = inForceAt(memberships.get(order.userId), acceptedAt);
      const level = membership && inForceAt(levels.get(membership.level), acceptedAt);
      const shippingFeeCents = new Map<string, number>();
      for (const [warehouseId, history] of fees) {
        const fee = inForceAt(history, acceptedAt);
        if (fee) shippingFeeCents.set(warehouseId, Number(fee.fee_cents));
      }
      const ruled: PricingRules = {
        promotions: promotions.filter((p) => p.createdAt.getTime() <= acceptedAt.getTime()).map((p) => p.promotion),
        coupon,
        member: level ? { level: level.level, discountPercent: level.discount_percent, freeShipping: Boolean(level.free_shipping) } : null,
        shippingFeeCents,
      };
      if (coupon && !written.has(order.orderId) && takesCoupon(order, skus, ruled)) used.set(usesKey, (used.get(usesKey) ?? 0) + 1);
      rules.set(order.orderId, ruled);
    }
    const read: SharedRulesRead = {
      acceptedFrom: earliest,
      acceptedUntil: latest,
      promotions: promotionRows.length,
      levels: [...new Set(memberRows.map((row) => row.level))],
      levelChanges: levelRows.length,
      warehouses: warehouseIds,
      feeChanges: feeRows.length,
    };
    return { version: { shared: Number(version), promotionEnds: Number(promotionEnds), read, buyers: userIds, buyersChanges: memberRows.length }, byOrder: rules };
  }

  async redemptions(orderId: string): Promise<Array<{ code: string; status: string; at: Date }>> {
    return this.db.selectFrom('coupon_redemptions').select(['code', 'status', 'at']).where('order_id', '=', orderId).execute();
  }
}

/** Now by the clock orders are accepted by (Redis's): what a change of the rules is dated by. */
export type AcceptanceClock = () => Promise<Date>;

/** The rules each order of a batch is priced with, and the version of the rules they were read at. */
export interface RulesAtAcceptance {
  version: RulesVersion;
  byOrder: Map<string, PricingRules>;
}

/**
 * What a batch's pricing read: the version of the rules any order is priced by (`shared`), the
 * promotions ended early by then (`promotionEnds`), how many of their dated rows it read (`read`),
 * and of its buyers' levels the changes in force by its last order's acceptance (`buyersChanges`).
 */
export interface RulesVersion {
  shared: number;
  promotionEnds: number;
  read: SharedRulesRead;
  buyers: readonly string[];
  buyersChanges: number;
}

/**
 * The rules changed after the batch's orders were priced (the version they were read at moved
 * on): nothing of the batch is written, and its orders are priced again.
 */
export class PricingRulesChangedMeanwhile extends Error {
  override readonly name = 'PricingRulesChangedMeanwhile';
  constructor() {
    super('the pricing rules changed after the orders were priced');
  }
}

/**
 * In a batch's transaction, before it writes: holds the rules' version row shared until the commit,
 * so no change of the rules is dated meanwhile (changeRules waits for it), and throws
 * PricingRulesChangedMeanwhile when the rules changed since `version`, the one the batch was priced at:
 * the rules every order is priced by, or a level of one of its buyers in force by its orders'
 * acceptance (read after the row, so a change committed before it is seen).
 * MySQL's LOCK IN SHARE MODE, which MariaDB reads too (it has no FOR SHARE).
 */
export async function holdRulesVersion(trx: Transaction<Database>, version: RulesVersion): Promise<void> {
  const { rows } = await sql<{ version: number; promotion_ends: number }>`SELECT version, promotion_ends FROM pricing_rules_version WHERE id = 1 LOCK IN SHARE MODE`.execute(trx);
  if (Number(rows[0]?.promotion_ends) !== version.promotionEnds) throw new PricingRulesChangedMeanwhile();
  if (Number(rows[0]?.version) !== version.shared && !(await sameRulesRead(trx, version.read))) throw new PricingRulesChangedMeanwhile();
  if (version.buyers.length === 0) return;
  const changes = await trx
    .selectFrom('member_history')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('user_id', 'in', [...version.buyers])
    .where('effective_from', '<=', version.read.acceptedUntil)
    .executeTakeFirstOrThrow();
  if (Number(changes.count) !== version.buyersChanges) throw new PricingRulesChangedMeanwhile();
}

/** Whether the order's pricing applies the coupon its rules offer; one that cannot be priced (a SKU gone) takes none, and is refused alone when priced. */
function takesCoupon(order: AcceptedOrder, skus: ReadonlyMap<string, Sku>, rules: PricingRules): boolean {
  try {
    return priceOrder(order.type, order.items, skus, new Date(order.acceptedAt), rules).applied.coupon !== null;
  } catch (error) {
    if (error instanceof DomainError) return false;
    throw error;
  }
}

/**
 * How many rows of the rules every order is priced by a batch's pricing read, by what it read them
 * for: the promotions created by its last order's acceptance and not ended by its first, and the
 * changes in force by its last of the levels its buyers hold and of its warehouses' fees. Each is
 * inserted, dated by the change (changeRules), so the same count read again is the same rows; the one
 * change of a row, a promotion's early end, is counted apart (RulesVersion.promotionEnds).
 */
interface SharedRulesRead {
  acceptedFrom: Date;
  acceptedUntil: Date;
  promotions: number;
  levels: readonly string[];
  levelChanges: number;
  warehouses: readonly string[];
  feeChanges: number;
}

type RulesReader = OrderDb | Transaction<Database>;
const promotionsRead = (db: RulesReader, read: Pick<SharedRulesRead, 'acceptedFrom' | 'acceptedUntil'>) =>
  db.selectFrom('promotions').where('ends_at', '>', read.acceptedFrom).where('created_at', '<=', read.acceptedUntil);
const levelChangesRead = (db: RulesReader, read: Pick<SharedRulesRead, 'levels' | 'acceptedUntil'>) =>
  db.selectFrom('member_level_history').where('level', 'in', [...read.levels]).where('effective_from', '<=', read.acceptedUntil);
const feeChangesRead = (db: RulesReader, read: Pick<SharedRulesRead, 'warehouses' | 'acceptedUntil'>) =>
  db.selectFrom('shipping_fee_history').where('warehouse_id', 'in', [...read.warehouses]).where('effective_from', '<=', read.acceptedUntil);

/**
 * Whether the rules a batch's pricing read are as they were, the version having moved: every change
 * since was dated after the batch's last acceptance, or is of a level or fee it does not use (a sale's
 * promotions loaded while orders queue), so its orders are priced as they were, and written, not
 * priced again round after round while the loading goes on. Read after the version row is held.
 */
async function sameRulesRead(trx: Transaction<Database>, read: SharedRulesRead): Promise<boolean> {
  const { promotions } = await promotionsRead(trx, read).select((eb) => eb.fn.countAll<number | string>().as('promotions')).executeTakeFirstOrThrow();
  if (Number(promotions) !== read.promotions) return false;
  const levels = read.levels.length === 0 ? 0 : (await levelChangesRead(trx, read).select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow()).count;
  if (Number(levels) !== read.levelChanges) return false;
  const fees = read.warehouses.length === 0 ? 0 : (await feeChangesRead(trx, read).select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow()).count;
  return Number(fees) === read.feeChanges;
}

function promotionOf(row: Selectable<PromotionsTable>): ThresholdPromotion {
  return {
    promotionId: row.promotion_id,
    title: row.title,
    thresholdCents: Number(row.threshold_cents),
    offCents: Number(row.off_cents),
    skuIds: row.sku_ids === null ? null : (JSON.parse(row.sku_ids) as string[]),
    startsAt: row.starts_at,
    endsAt: row.ends_at,
  };
}

/** Rows of a history (ordered by when each took effect) grouped by what they are the history of. */
function historyBy<Row>(rows: readonly Row[], keyOf: (row: Row) => string): Map<string, Row[]> {
  const byKey = new Map<string, Row[]>();
  for (const row of rows) {
    const history = byKey.get(keyOf(row));
    if (history) history.push(row);
    else byKey.set(keyOf(row), [row]);
  }
  return byKey;
}

/** The column each pricing history keeps its rows' changes by. */
const HISTORY_KEYS = { member_level_history: 'level', member_history: 'user_id', shipping_fee_history: 'warehouse_id' } as const;

/**
 * When a change made at `at` to `key`'s row of a pricing history takes effect: at `at`, or with
 * the change before it if that one took effect later. Each api instance stamps changes with its
 * own clock: one whose clock runs behind another's would put its change before the other's in
 * the history, and the change it replaced would price every order from then on, while the admin
 * was answered with the new one.
 */
async function takesEffectAt(trx: Transaction<Database>, history: keyof typeof HISTORY_KEYS, key: string, at: Date): Promise<Date> {
  const { rows } = await sql<{ last: Date | null }>`SELECT MAX(effective_from) AS last FROM ${sql.table(history)} WHERE ${sql.ref(HISTORY_KEYS[history])} = ${key}`.execute(trx);
  const last = rows[0]?.last;
  return last && last.getTime() > at.getTime() ? last : at;
}

/** The value in force at `at`: the last row of the history that took effect by then. */
function inForceAt<Row extends { effective_from: Date }>(history: readonly Row[] | undefined, at: Date): Row | undefined {
  return history?.findLast((row) => row.effective_from.getTime() <= at.getTime());
}

function couponOf(row: Selectable<CouponsTable>): Coupon {
  return {
    code: row.code,
    kind: row.kind,
    percentOff: row.percent_off,
    offCents: Number(row.off_cents),
    minSpendCents: Number(row.min_spend_cents),
    perBuyerLimit: row.per_buyer_limit,
    totalLimit: row.total_limit,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
  };
}
