/**
 * How long before it opens a flash sale stops taking changes: the change reaches every bucket
 * of the SKU in Redis and the catalog well before the old sale or the new one opens, whatever
 * the clocks of a Redis Cluster's nodes.
 */
export const SALE_CHANGE_CUTOFF_MS = 5_000;

/**
 * How long after its end a flash sale's buyers' counts toward its per-buyer limit are kept (a late
 * release of its orders still finds them), and so how long its SKU waits before a new sale
 * replaces it: the new sale's counts then start from nothing.
 */
export const SALE_COUNTS_KEPT_AFTER_END_MS = 24 * 3600 * 1000;
