import type { Migration } from 'kysely';
import * as initial from './0001-initial.js';

/**
 * Listed statically rather than read from a folder so the same list runs from src (tests)
 * and dist (production). Never edit a landed migration: add the next one here.
 */
export const migrations: Record<string, Migration> = {
  '0001-initial': initial,
};
