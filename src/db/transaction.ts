/** SQLite's write transaction, synchronous: see sqlite.ts for why it begins IMMEDIATE. */
import type { DatabaseSync } from "node:sqlite";

/** Runs `fn` between `BEGIN IMMEDIATE` and `COMMIT` (rolled back if it throws). */
export function immediate<T>(raw: DatabaseSync, fn: () => T): T {
  raw.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    raw.exec("COMMIT");
    return result;
  } catch (e) {
    if (raw.isTransaction) raw.exec("ROLLBACK");
    throw e;
  }
}
