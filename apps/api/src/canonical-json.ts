// what JSON.stringify escapes in a string: quotes, backslashes, control characters, surrogates (lone ones)
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NEEDS_ESCAPING = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON.stringify writes it; without its native call when nothing needs escaping (most keys and values). */
function jsonString(text: string): string {
  return NEEDS_ESCAPING.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * Stable JSON: the same body with keys in another order hashes the same. Its output is
 * pinned (flash-sale-checkout.test.ts): the hash is stored with each Idempotency-Key (a
 * checkout's in Redis, a SKU create's in its opening stock movement), so a retry answered
 * by the next release must hash to the same.
 */
export function canonicalJson(value: unknown): string {
  // loops, concatenation and few native calls: this runs on every checkout
  if (typeof value === 'string') return jsonString(value);
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  let json: string;
  if (Array.isArray(value)) {
    json = '[';
    for (let i = 0; i < value.length; i++) json += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${json}]`;
  }
  const record = value as Record<string, unknown>;
  json = '{';
  // the default sort orders by UTF-16 code units, as `<` does: the same order, the same hash
  for (const key of Object.keys(record).sort()) json += `${json.length === 1 ? '' : ','}${jsonString(key)}:${canonicalJson(record[key])}`;
  return `${json}}`;
}
