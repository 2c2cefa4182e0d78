import { HttpProblem } from './problems.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A JSON body's text, or undefined when it is not valid UTF-8. Read loosely, each invalid byte
 * would become U+FFFD and a name or address sent in another encoding be stored garbled, taken
 * as sent.
 */
export function utf8TextOf(body: Buffer): string | undefined {
  try {
    return strictUtf8.decode(body);
  } catch {
    return undefined;
  }
}

/** The refusal of a body that is not valid UTF-8, on every route that parses one. */
export function notUtf8(): HttpProblem {
  return new HttpProblem(400, 'VALIDATION_FAILED', 'The body is not valid UTF-8: send JSON in UTF-8');
}

/** Where a JSON text escapes a surrogate (\uD800 to \uDFFF): the only way its parsed strings can hold half of a pair. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** Half a surrogate pair alone: in a `u` pattern, a whole pair is one character and never matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

function someString(value: unknown, test: (text: string) => boolean): boolean {
  if (typeof value === 'string') return test(value);
  if (Array.isArray(value)) return value.some((item) => someString(item, test));
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([key, item]) => test(key) || someString(item, test));
  return false;
}

/**
 * Whether the body parsed from `text` holds a string (or a key) with half a surrogate pair, a
 * character no UTF-8 text holds: MySQL would store U+FFFD for it, so a name would be kept
 * garbled and two ids that differ only there (an imported order's) would collide.
 */
export function holdsLoneSurrogate(text: string, body: unknown): boolean {
  return SURROGATE_ESCAPE.test(text) && someString(body, (string) => LONE_SURROGATE.test(string));
}

/** The refusal of a body holding half a surrogate pair (holdsLoneSurrogate). */
export function loneSurrogate(): HttpProblem {
  return new HttpProblem(400, 'VALIDATION_FAILED', 'The body escapes half a UTF-16 surrogate pair (a \\uD800 to \\uDFFF without its other half), which no UTF-8 text holds: send each character whole');
}
