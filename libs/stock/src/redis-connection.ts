import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ChainableCommander, type RedisOptions } from 'ioredis';
import type { RedisClient } from './stock-scripts.js';

/** Where the system's Redis is, as the config says: one server at REDIS_URL, or the cluster its REDIS_CLUSTER_NODES lead to. */
export interface RedisLocation {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES: ReadonlyArray<{ host: string; port: number }>;
}

/**
 * TCP keep-alive on every connection, probing one idle this long: a failover behind one address
 * (a DNS name, a virtual IP) leaves the connections opened before it neither answered nor reset,
 * and an idle one (a subscriber's) otherwise stays open on nothing for hours (Linux's 2 h).
 */
const KEEP_ALIVE_IDLE_MS = 10_000;

/**
 * BullMQ's longest wait for a job on its blocking connection (a BZPOPMIN, BullMQ's
 * `maximumBlockTimeout`): that connection is a copy of the worker's, with its options.
 */
const BULLMQ_LONGEST_BLOCK_MS = 10_000;

/**
 * After how long without a byte from Redis, while a command awaits its answer, a connection is
 * taken for dead: destroyed and opened again, its unanswered commands failed (the api's) or sent
 * again (the worker's). A failover behind one address leaves the old connections silent, and
 * ioredis' command timeout fails a command without closing its connection, so every later command
 * failed on it too until TCP gave up (~15 min): checkouts answered 503 and workers persisted
 * nothing meanwhile. The longest a command may take (REDIS_COMMAND_TIMEOUT_MS, the replicas' WAITs
 * shorter; in a worker also BullMQ's block and the order events' WAIT), and REDIS_COMMAND_TIMEOUT_MS
 * more; never under SHORTEST_SOCKET_TIMEOUT_MS.
 */
export function redisSocketTimeoutMs(config: { REDIS_COMMAND_TIMEOUT_MS: number; EVENTS_REPLICA_TIMEOUT_MS: number }, process: 'api' | 'worker'): number {
  const longest = process === 'api' ? config.REDIS_COMMAND_TIMEOUT_MS : Math.max(config.REDIS_COMMAND_TIMEOUT_MS, BULLMQ_LONGEST_BLOCK_MS, config.EVENTS_REPLICA_TIMEOUT_MS);
  return Math.max(longest + config.REDIS_COMMAND_TIMEOUT_MS, SHORTEST_SOCKET_TIMEOUT_MS);
}

/**
 * A Redis that answers nothing for a moment and is there (a slow script, a fork for its snapshot)
 * is waited out on the connections open: taken for dead, every api's would be dropped and opened
 * again at once, their requests answered 503 meanwhile.
 */
const SHORTEST_SOCKET_TIMEOUT_MS = 5_000;

/**
 * The one place a process opens its Redis connection. With cluster nodes it is an ioredis
 * Cluster: each node connection takes the caller's options and REDIS_URL's credentials and
 * TLS; the options that describe the client as a whole (connecting lazily, queueing
 * commands while away, reconnecting) go to the Cluster itself, as ioredis reads them there.
 */
export function connectRedis(location: RedisLocation, callerOptions: RedisOptions = {}): RedisClient {
  const options: RedisOptions = { keepAlive: KEEP_ALIVE_IDLE_MS, ...callerOptions };
  if (location.REDIS_CLUSTER_NODES.length === 0) return new Redis(location.REDIS_URL, options);
  const { lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy, ...nodeOptions } = options;
  const url = new URL(location.REDIS_URL);
  return new Cluster(
    location.REDIS_CLUSTER_NODES.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect,
      enableOfflineQueue,
      enableReadyCheck,
      clusterRetryStrategy: retryStrategy,
      redisOptions: {
        ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
        ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
        ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
        ...nodeOptions,
      },
    },
  );
}

/** How ioredis says it could not send a command (not connected, offline queue off) or lost it with the connection. */
const UNREACHABLE = [/^Command timed out/, /^Connection is closed/, /^Stream isn't writeable/, /^Reached the max retries per request limit/, /^Failed to refresh slots cache/, /^None of startup nodes is available/];

/** A write taking units off sale that fewer replicas than asked acknowledged in time: a failover now would lose it. */
export class StockNotReplicated extends Error {
  override readonly name = 'StockNotReplicated';
}

/** True when Redis is away rather than refusing this command (or its replicas are, for a write that waits for them): the request can be asked again shortly. */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StockNotReplicated) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes((error as NodeJS.ErrnoException).code ?? '')) return true;
  return UNREACHABLE.some((pattern) => pattern.test(error.message));
}

/** Where a process writes its log lines: pino's and Fastify's loggers. */
export interface ConnectionLog {
  warn(details: object, message: string): void;
  info(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** What else reports a connection's errors: BullMQ's queues and workers on it. */
export interface ErrorReporter {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * One log line when a Redis connection goes away and one when it is back, in the process's
 * own JSON log. Without a listener ioredis writes an unstructured line to stderr on every
 * reconnect attempt, and BullMQ a multi-line error per queue: hundreds a minute of an outage,
 * none of which a log pipeline can parse. An error that is not Redis being away is logged as
 * it comes. A BullMQ worker's errors come from its own connections to the same Redis: they
 * count as this connection's while it is away, but never start an outage, as only this
 * connection's return can end one: a sibling still reconnecting after it is back, or failing
 * while it is still making its first connection (its ready check waits on a busy event loop),
 * would read as an outage that never was, or as Redis lost again with no line saying it is back.
 */
export function logRedisOutages(redis: RedisClient, connection: string, log: ConnectionLog, alsoReportedBy: ErrorReporter[] = []): void {
  let away = false;
  let errorsWhileAway = 0;
  const report = (error: Error, fromSibling: boolean) => {
    if (!isRedisUnavailable(error)) return log.error({ err: error, connection }, 'Redis or queue error');
    if (away) return void errorsWhileAway++;
    if (fromSibling) return;
    away = true;
    errorsWhileAway = 0;
    log.warn({ err: error, connection }, 'Redis connection lost: reconnecting');
  };
  redis.on('error', (error: Error) => report(error, false));
  for (const reporter of alsoReportedBy) reporter.on('error', (error) => report(error, true));
  redis.on('ready', () => {
    if (!away) return;
    away = false;
    log.info({ connection, errorsWhileAway }, 'Redis connection back');
  });
}

/**
 * One command on each of `keys`, which sit in many slots of a Cluster, sent as one pipeline per
 * master (a Cluster pipeline stays on one node): a socket write and a read per master, not one
 * per key. A key whose slot's master the client does not know yet goes alone. The replies come
 * in the order of `keys`; any command's error fails the read.
 */
export async function pipelinedPerMaster(cluster: Cluster, keys: readonly string[], command: (pipeline: ChainableCommander, key: string) => void): Promise<unknown[]> {
  const byMaster = new Map<string, number[]>();
  for (const [index, key] of keys.entries()) {
    const master = cluster.slots[calculateSlot(key)]?.[0] ?? `key ${key}`;
    const indexes = byMaster.get(master);
    if (indexes) indexes.push(index);
    else byMaster.set(master, [index]);
  }
  const replies: unknown[] = [];
  await Promise.all(
    [...byMaster.values()].map(async (indexes) => {
      const pipeline = cluster.pipeline();
      for (const index of indexes) command(pipeline, keys[index]!);
      for (const [at, [error, reply]] of ((await pipeline.exec()) ?? []).entries()) {
        if (error) throw error;
        replies[indexes[at]!] = reply;
      }
    }),
  );
  return replies;
}

/**
 * One command on each of `keys`, in as few round trips as the client allows: one pipeline on a
 * single Redis, one per master on a Cluster (pipelinedPerMaster). The replies come in the order of
 * `keys`; any command's error fails the read.
 */
export async function pipelinedEach(redis: RedisClient, keys: readonly string[], command: (pipeline: ChainableCommander, key: string) => void): Promise<unknown[]> {
  if (redis instanceof Cluster) return pipelinedPerMaster(redis, keys, command);
  const pipeline = redis.pipeline();
  for (const key of keys) command(pipeline, key);
  return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}

/** Every master of the client: a SCAN or a flush sees one node's keys only, so it runs on each. */
export function mastersOf(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/**
 * One INFO section of every master. A Cluster that reached no master yet (starting, or all its
 * nodes away) knows none: the read fails, and the gauges fed by it keep no figure, rather than the
 * one of no master (an uptime or a replica count above every one to come, a replication ID of 0).
 */
async function infoOfMasters(redis: RedisClient, section: 'server' | 'replication' | 'memory'): Promise<string[]> {
  const masters = mastersOf(redis);
  if (masters.length === 0) throw new Error('no Redis master reached');
  return Promise.all(masters.map(async (node) => node.info(section)));
}

/** A number field of an INFO section (0 when absent). */
const infoField = (info: string, name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);

/**
 * Seconds since the youngest master started (INFO server's uptime_in_seconds): one that restarted
 * lost what it held since its last write to its append-only file, all of it without one.
 */
export async function redisUptimeOf(redis: RedisClient): Promise<number> {
  return Math.min(...(await infoOfMasters(redis, 'server')).map((info) => infoField(info, 'uptime_in_seconds')));
}

/**
 * A number standing for the masters' replication IDs (INFO replication's master_replid, the sum
 * of each one's first 32 bits): a replica promoted by a failover takes a new one, as does a master
 * restarted without its data. Unlike a restart, a failover leaves the uptime long: this number
 * changing is how it shows.
 */
export async function redisMastersReplicationIdOf(redis: RedisClient): Promise<number> {
  const ids = (await infoOfMasters(redis, 'replication')).map((info) => /^master_replid:([0-9a-f]{8})/m.exec(info)?.[1] ?? '0');
  return ids.reduce((sum, id) => sum + Number.parseInt(id, 16), 0);
}

/**
 * The replicas of the masters (INFO replication): how many the master with fewest has connected,
 * and the longest any of them has gone without acknowledging its master (seconds: replicas
 * acknowledge every second). What a failover would lose grows with that lag; with
 * RESERVATION_REPLICA_ACKS above 0, a master without its replicas refuses checkouts.
 */
export async function redisReplicasOf(redis: RedisClient): Promise<{ connected: number; lagSeconds: number }> {
  const masters = await infoOfMasters(redis, 'replication');
  const lags = masters.flatMap((info) => [...info.matchAll(/^slave\d+:.*\blag=(\d+)/gm)].map((match) => Number(match[1])));
  return { connected: Math.min(...masters.map((info) => infoField(info, 'connected_slaves'))), lagSeconds: Math.max(0, ...lags) };
}

/**
 * Bytes used and allowed (maxmemory, 0 = no limit) of the master nearest its limit: the one
 * that refuses writes first. A master without a limit counts by its bytes alone.
 */
export async function redisMemoryOf(redis: RedisClient): Promise<{ used: number; max: number }> {
  const memory = (await infoOfMasters(redis, 'memory')).map((info) => ({ used: infoField(info, 'used_memory'), max: infoField(info, 'maxmemory') }));
  const share = (node: { used: number; max: number }) => (node.max > 0 ? node.used / node.max : 0);
  return memory.reduce((fullest, node) => (share(node) > share(fullest) || (share(node) === share(fullest) && node.used > fullest.used) ? node : fullest));
}
