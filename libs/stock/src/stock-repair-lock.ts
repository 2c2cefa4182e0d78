import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { runStockScript, type RedisClient } from './stock-scripts.js';

/** Another stock repair held the lock for as long as this one would wait: this one changed nothing. */
export class StockRepairUnderWay extends Error {
  override readonly name = 'StockRepairUnderWay';
}

/** Long enough to outlast a pause of its holder; short enough that a holder that died frees it soon. */
const LOCK_TTL_MS = 30_000;
const WAIT_STEP_MS = 100;

/**
 * One stock repair at a time, whichever process runs it: two repairs reading the same
 * drift would each move the counters by it. A key set NX under the stock key prefix,
 * kept alive while its holder works and deleted by its holder alone; a holder that dies
 * lets it lapse within LOCK_TTL_MS.
 */
export class StockRepairLock {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
  ) {
    this.key = `${keyPrefix}stock-repair-lock`;
  }

  /**
   * Runs `work` while holding the lock, waiting up to `waitMs` for another holder to let go.
   * `work` is told whether the lock is still its own (false once it lapsed unrenewed).
   */
  async whileHeld<T>(waitMs: number, work: (stillHeld: () => boolean) => Promise<T>): Promise<T> {
    const token = `${hostname()}:${process.pid} since ${new Date().toISOString()} (${randomUUID()})`;
    const giveUpAt = Date.now() + waitMs;
    while ((await this.redis.set(this.key, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
      if (Date.now() >= giveUpAt) {
        const holder = await this.redis.get(this.key);
        throw new StockRepairUnderWay(`another stock repair is running (${holder ?? 'it has just finished'}); nothing was repaired: run again once it has finished`);
      }
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
    }
    let held = true;
    const keepAlive = setInterval(() => {
      runStockScript(this.redis, 'extendLock', [this.key], [token, LOCK_TTL_MS]).then(
        (extended) => {
          if (extended === 0) held = false;
        },
        // Redis away: the lock may lapse, and the work's own commands fail meanwhile
        () => undefined,
      );
    }, LOCK_TTL_MS / 3);
    try {
      return await work(() => held);
    } finally {
      clearInterval(keepAlive);
      await runStockScript(this.redis, 'releaseLock', [this.key], [token]);
    }
  }
}
