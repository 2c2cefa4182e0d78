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
