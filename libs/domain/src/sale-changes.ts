/**
 * How long before it opens a flash sale stops taking changes: the change reaches every bucket
 * of the SKU in Redis and the catalog well before the old sale or the new one opens, whatever
 * the clocks of a Redis Cluster's nodes.
 */
export const SALE_CHANGE_CUTOFF_MS = 5_000;
