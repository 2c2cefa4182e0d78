import { useState } from 'preact/hooks';
import { operatorOfTab } from './session.js';

/**
 * What an operator typed on an order's page (a reason, units to refund, a new address) and the
 * key of a refund sent without an answer, kept for this browser tab and this operator: a reload,
 * a visit to another page or signing in again (after the token expired, or after signing out)
 * finds them as they were, and a refund sent again after any of them goes under the first one's
 * key, so it is not paid twice. Another operator signed in on the tab sees none of them.
 */
const PREFIX = 'order-centre-draft:';

const keyOf = (orderId: string, field: string) => `${PREFIX}${operatorOfTab()}:${orderId}:${field}`;

export function readDraft<T>(orderId: string, field: string): T | null {
  const kept = sessionStorage.getItem(keyOf(orderId, field));
  if (kept === null) return null;
  try {
    return JSON.parse(kept) as T;
  } catch {
    return null;
  }
}

/** null forgets it */
export function keepDraft<T>(orderId: string, field: string, value: T | null): void {
  if (value === null) sessionStorage.removeItem(keyOf(orderId, field));
  else sessionStorage.setItem(keyOf(orderId, field), JSON.stringify(value));
}

/** State that is also kept as a draft; set to `empty`, it is forgotten. */
export function useDraft<T>(orderId: string, field: string, empty: T): [T, (value: T) => void] {
  const [value, setValue] = useState<T>(() => readDraft<T>(orderId, field) ?? empty);
  return [
    value,
    (next: T) => {
      setValue(next);
      keepDraft(orderId, field, JSON.stringify(next) === JSON.stringify(empty) ? null : next);
    },
  ];
}
