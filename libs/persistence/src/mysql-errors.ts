/** mysql2 reports a unique-key clash as ER_DUP_ENTRY (errno 1062). */
export function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: string }).code === 'ER_DUP_ENTRY';
}
