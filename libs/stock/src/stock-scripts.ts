import { readFileSync } from 'node:fs';
import type { Cluster, Redis, Result } from 'ioredis';

export type RedisClient = Redis | Cluster;

type Reply = Array<number | string>;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    reserveStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<Reply, Context>;
    releaseStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    initSku(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    setStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<[number, number], Context>;
    commitStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<[number, number], Context>;
    restockStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    releaseCoupon(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    takeStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<[number, number], Context>;
    giveStock(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    countInWindows(numKeys: number, ...keysAndArgs: (string | number)[]): Result<number[], Context>;
  }
}

const SCRIPT_FILES = {
  reserveStock: 'reserveStock-5+2n.lua',
  releaseStock: 'releaseStock-2+2n.lua',
  releaseCoupon: 'releaseCoupon-3.lua',
  initSku: 'initSku-1.lua',
  setStock: 'setStock-1.lua',
  commitStock: 'commitStock-1+n.lua',
  restockStock: 'restockStock-1+n.lua',
  takeStock: 'takeStock-3.lua',
  giveStock: 'giveStock-2.lua',
  countInWindows: 'countInWindows-n.lua',
} as const;

// tsc does not copy .lua files; they are read from the package's src/lua in both src and dist runs.
const luaDir = new URL('../src/lua/', import.meta.url);
const sources = Object.fromEntries(
  Object.entries(SCRIPT_FILES).map(([name, file]) => [name, readFileSync(new URL(file, luaDir), 'utf8')]),
) as Record<keyof typeof SCRIPT_FILES, string>;

/**
 * Registers the scripts on a connection. ioredis runs them with EVALSHA and sends the
 * source only after a NOSCRIPT (a restarted or failed-over Redis).
 */
export function defineStockScripts(redis: RedisClient): void {
  for (const [name, lua] of Object.entries(sources)) {
    if (!(name in redis)) redis.defineCommand(name, { lua });
  }
}
