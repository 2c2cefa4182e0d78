import { useState } from 'preact/hooks';
import { operatorOfTab } from './session.js';

/**
 * What an operator typed on an order's page (a reason, units to refund, a new address) and the
 * key of a refund (or a SKU's create or stock set) sent without an answer, kept for this browser tab and this operator: a reload,
 * a visit to another page or signing in again (after the token expired, or after signing out)
 * finds them as they were, and a refund sent again after any of them goes under the first one's
 * key, so it is not paid twice. Another operator signed in on the tab sees none of them.
 */
const PREFIX = 'order-centre-draft:';

/** `scope`: the order's id, or `sku:` and the id of a SKU being created or having its stock set */
const keyOf = (scope: string, field: string) => `${PREFIX}${operatorOfTab()}:${scope}:${field}`;

export function readDraft<T>(scope: string, field: string): T | null {
  const kept = sessionStorage.getItem(keyOf(scope, field));
  if (kept === null) return null;
  try {
    return JSON.parse(kept) as T;
  } catch {
    return null;
  }
}

/** null forgets it */
export function keepDraft<T>(scope: string, field: string, value: T | null): void {
  if (value === null) sessionStorage.removeItem(keyOf(scope, field));
  else sessionStorage.setItem(keyOf(scope, field), JSON.stringify(value));
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
