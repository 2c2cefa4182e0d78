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

export const NOT_UTF8 = 'The body is not valid UTF-8: send JSON in UTF-8';
