import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { runStockScript, type RedisClient } from './stock-scripts.js';

/** Another run held the lock for as long as this one would wait: this one did nothing. */
export class RunUnderWay extends Error {
  override readonly name = 'RunUnderWay';
}

/** A wait for another holder's lock: its token (null: just let go), how long this one waits, how soon a dead holder's lock lapses. */
export interface LockWait {
  holder: string | null;
  waitMs: number;
  lapsesWithinMs: number;
}

/** Long enough to outlast a pause of its holder; short enough that a holder that died frees it soon. */
const LOCK_TTL_MS = 30_000;
const WAIT_STEP_MS = 100;

/**
 * One run of a piece of work at a time, whichever process runs it (a stock repair: two reading
 * the same drift would each move the counters by it). A key set NX, kept alive while its holder
 * works and deleted by its holder alone; a holder that dies lets it lapse within its lifetime
 * (LOCK_TTL_MS).
 */
export class RunLock {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    /** the work, as an operator reads it in the refusal: 'stock repair' */
    private readonly what: string,
    /** How long the lock outlives its holder's last renewal. */
    private readonly lifetimeMs = LOCK_TTL_MS,
  ) {}

  /**
   * Runs `work` while holding the lock, waiting up to `waitMs` for another holder to let go
   * (`waiting` is told once, with the holder's token, as the wait starts: a command waiting in
   * silence reads as hung). `work` is told whether the lock is still its own: false once another
   * took it, or once its lifetime passed since its last renewal Redis confirmed (Redis
   * unreachable: it may have lapsed).
   */
  async whileHeld<T>(waitMs: number, work: (stillHeld: () => boolean) => Promise<T>, waiting?: (wait: LockWait) => void): Promise<T> {
    const token = `${hostname()}:${process.pid} since ${new Date().toISOString()} (${randomUUID()})`;
    const giveUpAt = Date.now() + waitMs;
    // measured from before each SET or renewal is sent: Redis's own time to live started no earlier
    let setAt = Date.now();
    let toldWaiting = false;
    while ((await this.redis.set(this.key, token, 'PX', this.lifetimeMs, 'NX')) !== 'OK') {
      if (waiting && !toldWaiting) {
        toldWaiting = true;
        waiting({ holder: await this.redis.get(this.key), waitMs, lapsesWithinMs: this.lifetimeMs });
      }
      if (Date.now() >= giveUpAt) {
        const holder = await this.redis.get(this.key);
        throw new RunUnderWay(`another ${this.what} is running (${holder ?? 'it has just finished'}); this one did nothing: run again once it has finished`);
      }
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
      setAt = Date.now();
    }
    let heldUntil = setAt + this.lifetimeMs;
    const keepAlive = setInterval(() => {
      const sentAt = Date.now();
      runStockScript(this.redis, 'extendLock', [this.key], [token, this.lifetimeMs]).then(
        (extended) => {
          heldUntil = extended === 1 ? Math.max(heldUntil, sentAt + this.lifetimeMs) : 0;
        },
        // Redis away: the lock counts as lost once its lifetime has passed without a renewal
        () => undefined,
      );
    }, this.lifetimeMs / 3);
    try {
      return await work(() => Date.now() < heldUntil);
    } finally {
      clearInterval(keepAlive);
      // Redis away: the lock lapses by itself; the work's own result or error is what the caller needs
      await runStockScript(this.redis, 'releaseLock', [this.key], [token]).catch(() => undefined);
    }
  }
}
