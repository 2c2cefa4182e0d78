import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, type ChainableCommander, type Cluster, type Pipeline, type Redis } from 'ioredis';

export type RedisClient = Redis | Cluster;

/** What each script answers. */
interface StockScriptReplies {
  reserveStock: Array<number | string>;
  claimCheckout: Array<number | string>;
  dropClaim: number;
  abandonClaim: number;
  forgetClaims: number;
  releaseStock: number;
  releaseCoupon: number;
  endCoupon: number;
  publishCoupon: number;
  initSku: number;
  changeSale: number[];
  putOffSale: number;
  startStockSet: [number, number];
  setStock: [number, number];
  closeStockSet: number;
  takeBackStockSet: number;
  correctBucket: number;
  commitStock: [number, number];
  restoreReservation: number;
  restockStock: number;
  restoreBought: number;
  restoreCouponUses: number;
  restoreCheckoutKey: number;
  takeStock: [number, number];
  giveStock: number;
  countInWindows: number[];
  soldOutCheck: number[];
  extendLock: number;
  releaseLock: number;
  countAccepted: number;
}

export type StockScriptName = keyof StockScriptReplies;
export type StockScriptReply<N extends StockScriptName> = StockScriptReplies[N];

const SCRIPT_FILES: Record<StockScriptName, string> = {
  reserveStock: 'reserveStock-7+c+2n.lua',
  claimCheckout: 'claimCheckout-7+c.lua',
  dropClaim: 'dropClaim-2.lua',
  abandonClaim: 'abandonClaim-3+2h.lua',
  forgetClaims: 'forgetClaims-1.lua',
  releaseStock: 'releaseStock-4+2n.lua',
  releaseCoupon: 'releaseCoupon-4.lua',
  endCoupon: 'endCoupon-1.lua',
  publishCoupon: 'publishCoupon-1.lua',
  initSku: 'initSku-1.lua',
  changeSale: 'changeSale-1.lua',
  putOffSale: 'putOffSale-1.lua',
  startStockSet: 'startStockSet-2.lua',
  setStock: 'setStock-1.lua',
  closeStockSet: 'closeStockSet-2.lua',
  takeBackStockSet: 'takeBackStockSet-1.lua',
  correctBucket: 'correctBucket-2.lua',
  commitStock: 'commitStock-1+n.lua',
  restoreReservation: 'restoreReservation-2.lua',
  restockStock: 'restockStock-1+2n.lua',
  restoreBought: 'restoreBought-1+n.lua',
  restoreCouponUses: 'restoreCouponUses-1+n.lua',
  restoreCheckoutKey: 'restoreCheckoutKey-1.lua',
  takeStock: 'takeStock-3.lua',
  giveStock: 'giveStock-2.lua',
  countInWindows: 'countInWindows-n.lua',
  soldOutCheck: 'soldOutCheck-2+c.lua',
  extendLock: 'extendLock-1.lua',
  releaseLock: 'releaseLock-1.lua',
  countAccepted: 'countAccepted-n.lua',
};

/** Lua functions in src/lua/shared that scripts call, put before the scripts that use them (a script cannot call another). */
const SHARED_FUNCTIONS: Partial<Record<StockScriptName, string[]>> = {
  reserveStock: ['countInWindow.lua', 'couponUse.lua', 'redisClock.lua', 'saleCount.lua'],
  claimCheckout: ['countInWindow.lua', 'couponUse.lua', 'redisClock.lua'],
  releaseStock: ['couponUse.lua', 'saleCount.lua'],
  restockStock: ['saleCount.lua'],
  releaseCoupon: ['couponUse.lua'],
  endCoupon: ['couponUse.lua', 'redisClock.lua'],
  publishCoupon: ['couponUse.lua'],
  abandonClaim: ['couponUse.lua'],
  countInWindows: ['countInWindow.lua'],
  changeSale: ['redisClock.lua'],
  restoreBought: ['redisClock.lua'],
  restoreCheckoutKey: ['redisClock.lua'],
  soldOutCheck: ['countInWindow.lua'],
};

/** How long a buyer's coupon uses outlive the coupon (takeCouponUse in shared/couponUse.lua, and the repair's counts). */
export const COUPON_USES_KEPT_AFTER_END_MS = 24 * 3600 * 1000;
/** How long, at most, a buyer's coupon-use count given back to 0 is kept (giveUseBack): long past a stock repair reading MySQL meanwhile. */
const COUPON_USES_KEPT_AT_NONE_MS = 24 * 3600 * 1000;

/** Numbers a shared file's Lua reads, set before it from the one definition this side has. */
const SHARED_CONSTANTS: Partial<Record<string, string>> = {
  'couponUse.lua': `local COUPON_USES_KEPT_AFTER_END_MS = ${COUPON_USES_KEPT_AFTER_END_MS}\nlocal COUPON_USES_KEPT_AT_NONE_MS = ${COUPON_USES_KEPT_AT_NONE_MS}\n`,
};

interface StockScript {
  lua: string;
  sha: string;
  /** The connections (sockets) that have run the script, so know it by its SHA. */
  loadedOn: WeakSet<object>;
}

// tsc does not copy .lua files; they are read from the package's src/lua in both src and dist runs.
const luaDir = new URL('../src/lua/', import.meta.url);
const SCRIPTS = Object.fromEntries(
  Object.entries(SCRIPT_FILES).map(([name, file]) => {
    const shared = (SHARED_FUNCTIONS[name as StockScriptName] ?? []).map((sharedFile) => (SHARED_CONSTANTS[sharedFile] ?? '') + readFileSync(new URL(`shared/${sharedFile}`, luaDir), 'utf8'));
    const lua = [...shared, readFileSync(new URL(file, luaDir), 'utf8')].join('\n');
    return [name, { lua, sha: createHash('sha1').update(lua).digest('hex'), loadedOn: new WeakSet<object>() }];
  }),
) as Record<StockScriptName, StockScript>;

const NO_ARGUMENTS: never[] = [];

/**
 * One call of a stock script, as ioredis' own script commands send it: EVAL the first time
 * on a connection (which loads the script), EVALSHA after, EVAL again after a NOSCRIPT (a
 * flushed script cache). Built here rather than through `defineCommand` because ioredis'
 * Command constructor copies its arguments with `Array.prototype.flat`, ~80 ns an argument
 * on Node 20 and an array slow to read afterwards: a reservation has ~20 arguments, and
 * setting them directly took 13 % off a checkout's instructions (bench/README item 28).
 */
export class StockScriptCall extends Command {
  private readonly script: StockScript;

  constructor(
    /** Which script this calls, for whoever looks at the commands a connection sends. */
    readonly scriptName: StockScriptName,
    keys: readonly string[],
    args: readonly (string | number)[],
  ) {
    super('evalsha', NO_ARGUMENTS, { replyEncoding: 'utf8' });
    this.script = SCRIPTS[scriptName];
    this.args = [this.script.sha, keys.length, ...keys, ...args];
    // as the constructor does with the arguments it is given: numbers become strings
    this.stringifyArguments();
  }

  override toWritable(socket: object): string | Buffer {
    const reject = this.reject;
    this.reject = (error: Error) => {
      if (error.message.includes('NOSCRIPT')) this.script.loadedOn.delete(socket);
      reject.call(this, error);
    };
    if (!this.script.loadedOn.has(socket)) {
      this.script.loadedOn.add(socket);
      this.name = 'eval';
      this.args[0] = this.script.lua;
    } else if (this.name === 'eval') {
      this.name = 'evalsha';
      this.args[0] = this.script.sha;
    }
    return super.toWritable(socket);
  }
}

/** A call whose NOSCRIPT is answered by sending it again through `client`, as EVAL then (`sentAgain` is told). */
function scriptCall(client: RedisClient, name: StockScriptName, keys: readonly string[], args: readonly (string | number)[], sentAgain?: () => void): StockScriptCall {
  const call = new StockScriptCall(name, keys, args);
  call.promise = call.promise.catch((error: Error) => {
    if (!error.message.includes('NOSCRIPT')) throw error;
    sentAgain?.();
    const again = new StockScriptCall(name, keys, args);
    void client.sendCommand(again);
    return again.promise;
  });
  return call;
}

/** Runs a stock script (`keys` become KEYS, `args` ARGV) and resolves with its reply. */
export function runStockScript<N extends StockScriptName>(client: RedisClient, name: N, keys: readonly string[], args: readonly (string | number)[]): Promise<StockScriptReply<N>> {
  const call = scriptCall(client, name, keys, args);
  void client.sendCommand(call);
  return call.promise as Promise<StockScriptReply<N>>;
}

/** Pipelines with a script call sent again after NOSCRIPT: outside the pipeline, so after its last command. */
const sentAfterPipeline = new WeakSet<ChainableCommander>();

/** Queues a call of a stock script on a pipeline; its reply comes with the pipeline's. */
export function queueStockScript(pipeline: ChainableCommander, name: StockScriptName, keys: readonly string[], args: readonly (string | number)[]): void {
  // redis.pipeline() is a Pipeline; the type it is declared with leaves out sendCommand
  const queue = pipeline as unknown as Pipeline;
  queue.sendCommand(scriptCall(queue.redis, name, keys, args, () => sentAfterPipeline.add(pipeline)));
}

/** Whether a script call queued on `pipeline` was sent again after the pipeline (known once its replies are in). */
export function scriptSentAfter(pipeline: ChainableCommander): boolean {
  return sentAfterPipeline.has(pipeline);
}
