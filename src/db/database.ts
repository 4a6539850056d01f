/**
 * Which database the gateway uses, and where: Postgres when `database_url` (or the
 * environment's DATABASE_URL) is set, else the embedded SQLite file: the config's
 * `general_settings.spend_db` if given, else `imagegate.sqlite` in the user's data
 * directory (paths.ts), never the working directory.
 *
 * The rest of the code asks for a `Database` and uses `db` (Kysely, the same typed queries
 * on both) or, where the two differ (the ledger's hot path), switches on `dialect`.
 */
import type { Ledger } from "../auth/ledger.ts";
import type { PostgresDatabase } from "./postgres.ts";
import { PostgresLedger } from "./postgres-ledger.ts";
import { openSqlite, type SqliteDatabase } from "./sqlite.ts";
import { SqliteLedger } from "./sqlite-ledger.ts";

export type Database = SqliteDatabase | PostgresDatabase;

export interface DatabaseSettings {
  /** `postgresql://…`: the shared database. */
  url?: string;
  /** The SQLite file (or `:memory:`), when there is no URL. */
  path: string;
}

export async function openDatabase(settings: DatabaseSettings): Promise<Database> {
  // pg is loaded only for a shared database (it costs memory every process would carry).
  if (settings.url === undefined) return openSqlite(settings.path);
  const { openPostgres } = await import("./postgres.ts");
  return openPostgres(settings.url);
}

export interface LedgerOptions {
  /** Key name → key id, to carry spend kept by name (SQLite files from before key ids). */
  names?: ReadonlyMap<string, string>;
  holdTtlMs?: number;
  /** Told when buffered writes fail (Postgres). */
  onFlushError?: (error: unknown) => void;
}

/** The budget ledger on `database` (which stays open when the ledger closes). */
export function ledgerOn(
  database: Database,
  options: LedgerOptions = {},
): Ledger & {
  readonly unmigratedNames?: readonly string[];
} {
  return database.dialect === "sqlite"
    ? new SqliteLedger(database, options)
    : new PostgresLedger(database, options);
}
