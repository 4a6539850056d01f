/**
 * The database's tables as TypeScript sees them: one schema for SQLite and Postgres (the
 * DDL is in migrations.ts, written once with Kysely's schema builder). Times are epoch
 * milliseconds (`bigint` columns; the Postgres pool reads int8 as a number), money is USD
 * as double precision, booleans are 0/1 integers and lists and maps are JSON text, so a
 * row reads the same from either database.
 */
import type { Generated } from "kysely";

/** Keys made through the management API (and config-file keys listed beside them). */
export interface KeysTable {
  /** The key's SHA-256 in lowercase hex: the API's `token`, what spend is kept by. */
  id: string;
  key_alias: string | null;
  /** JSON array of model names; null: every model. */
  models: string | null;
  rpm_limit: number | null;
  max_budget: number | null;
  /** `30s`, `10m`, `24h`, `30d`: spend resets each period. */
  budget_duration: string | null;
  budget_reset_at: number | null;
  /** Epoch ms after which the key is refused; null: never. */
  expires: number | null;
  blocked: Generated<number>;
  /** JSON object. */
  metadata: Generated<string>;
  created_at: number;
  updated_at: number;
  /** `api` (made through the management API) or `config` (the config file's). */
  source: Generated<string>;
}

/** A key's recorded spend (holds not included). */
export interface KeySpendTable {
  key_id: string;
  usd: number;
}

/** Part of a key's budget held by one request in flight; expires if never settled. */
export interface KeyHoldsTable {
  id: string;
  key_id: string;
  usd: number;
  expires_at: number;
}

/** One row per request, answered or failed: the management API's `/spend/logs`. */
export interface SpendLogsTable {
  /** Made by the writer; inserting the same row twice is a no-op (a replayed journal). */
  id: string;
  request_id: string;
  /** The key's token (SHA-256); null on an open gateway. */
  api_key: string | null;
  key_alias: string | null;
  end_user: string | null;
  model: string | null;
  model_id: string | null;
  provider: string | null;
  /** `success` or `failure`. */
  status: string;
  spend: number;
  images: number;
  size: string | null;
  quality: string | null;
  start_time: number;
  end_time: number;
  attempts: number;
  /** JSON: each attempt's `{deployment, error?}` in order (migration 4; null before it). */
  attempt_log: string | null;
}

/**
 * Spend journal entries (spend-journal.ts) the database has applied, written in the same
 * transaction as their spend: a replayed entry finds its id here and counts nothing twice.
 */
export interface SpendJournalMarksTable {
  id: string;
  applied_at: number;
}

export interface Schema {
  keys: KeysTable;
  key_spend: KeySpendTable;
  key_holds: KeyHoldsTable;
  spend_logs: SpendLogsTable;
  spend_journal_marks: SpendJournalMarksTable;
}
