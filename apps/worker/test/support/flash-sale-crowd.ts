import { buyerAddress, createSku, signToken, waitFor, type ApiProcess, type HttpAnswer, type TestEnv } from '@orders/testing';
import { setTimeout as sleep } from 'node:timers/promises';

/** A flash sale of 200 units to 600 buyers driven through the api, and what the shop checks after it (the Redis failover tests'). */
export const STOCK = 200;
export const BUYERS = 600;
const HOUR = 3600 * 1000;

export const processSettings = {
  RESERVATION_REPLICA_ACKS: '1',
  WORKER_QUEUES: 'orders,timers',
  WORKER_LOCK_DURATION_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  STRANDED_ORDER_AFTER_MS: '3000',
  SWEEP_INTERVAL_MS: '1000',
};

export async function createFlashSku(api: ApiProcess, admin: string): Promise<void> {
  const now = Date.now();
  await createSku(api, admin, {
    skuId: 'FLASH',
    title: 'Flash phone',
    priceCents: 59_900,
    merchantId: 'shop',
    channel: 'self',
    warehouseId: 'wh-east',
    stock: STOCK,
    deduction: 'placement',
    flashSale: { priceCents: 49_900, startsAt: new Date(now - HOUR).toISOString(), endsAt: new Date(now + HOUR).toISOString(), perUserLimit: 1 },
  });
}

/** 600 buyers, 40 at a time, each retrying a 503 or a lost answer with the same Idempotency-Key, then (`secondTry`) trying a second unit with a new key. */
export class BuyerCrowd {
  readonly accepted: Array<{ buyer: string; orderId: string }> = [];
  private readonly answers = new Map<number, number>();
  private unanswered = 0;
  private next = 0;

  constructor(
    private readonly env: TestEnv,
    private readonly api: () => ApiProcess,
    private readonly secondTry: boolean,
  ) {}

  run(): Promise<unknown> {
    return Promise.all(Array.from({ length: 40 }, () => this.loop()));
  }

  summary(): string {
    return `answers ${JSON.stringify([...this.answers])}, ${this.unanswered} without an answer`;
  }

  /** How many checkouts were answered `status` so far, retries included. */
  answered(status: number): number {
    return this.answers.get(status) ?? 0;
  }

  private async loop(): Promise<void> {
    for (let i = this.next++; i < BUYERS; i = this.next++) {
      const buyer = `buyer-${i}`;
      const first = await this.checkout(buyer, `first-${i}`);
      if (first.status !== 202) continue;
      this.accepted.push({ buyer, orderId: first.body.orderId as string });
      if (!this.secondTry) continue;
      const second = await this.checkout(buyer, `second-${i}`);
      if (second.status === 202) this.accepted.push({ buyer, orderId: second.body.orderId as string });
    }
  }

  private async checkout(buyer: string, key: string): Promise<HttpAnswer> {
    const token = signToken(this.env.config.AUTH_JWT_SECRET, { sub: buyer, role: 'buyer' });
    for (;;) {
      const answer = await this.api()
        .request('POST', '/v1/orders', { token, headers: { 'idempotency-key': key }, body: { items: [{ skuId: 'FLASH', qty: 1 }], address: buyerAddress } })
        .catch(() => undefined);
      if (answer === undefined) this.unanswered++;
      else this.answers.set(answer.status, (this.answers.get(answer.status) ?? 0) + 1);
      if (answer !== undefined && answer.status !== 503) return answer;
      await sleep(100);
    }
  }
}

/** Waits for every order answered 202 to be in MySQL, at most 20 s: one still missing then shows in the report as lost. */
export async function allAcceptedInMysql(env: TestEnv, buyers: BuyerCrowd): Promise<void> {
  const missing = async () => {
    const ids = buyers.accepted.map((order) => order.orderId);
    const found = await env.db.selectFrom('orders').select('order_id').where('order_id', 'in', ids).execute();
    return ids.length - found.length;
  };
  await waitFor(async () => (await missing()) === 0, { what: 'the accepted orders in MySQL', timeoutMs: 20_000, intervalMs: 250 }).catch(() => undefined);
}

/** What the shop checks after the sale, from MySQL. */
export async function saleReport(env: TestEnv, buyers: BuyerCrowd) {
  const rows = await env.db
    .selectFrom('orders')
    .innerJoin('order_items', 'order_items.order_id', 'orders.order_id')
    .select(['orders.order_id', 'orders.user_id', 'orders.status', 'order_items.qty'])
    .where('orders.parent_order_id', 'is', null)
    .execute();
  const held = rows.filter((row) => row.status !== 'CANCELLED');
  const perBuyer = new Map<string, number>();
  for (const row of held) perBuyer.set(row.user_id, (perBuyer.get(row.user_id) ?? 0) + row.qty);
  const inMysql = new Set(rows.map((row) => row.order_id));
  const answered = new Set(buyers.accepted.map((order) => order.orderId));
  return {
    accepted: buyers.accepted.length,
    unitsSold: held.reduce((sum, row) => sum + row.qty, 0),
    lost: [...answered].filter((id) => !inMysql.has(id)),
    neverAnswered202: rows.filter((row) => !answered.has(row.order_id)).map((row) => `${row.user_id} ${row.order_id} ${row.status}`),
    buyersPastLimit: [...perBuyer].filter(([, units]) => units > 1),
  };
}
