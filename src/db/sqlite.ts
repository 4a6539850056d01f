/**
 * The embedded database: a SQLite file through `node:sqlite` (built into Node 24, no
 * native addon to compile), queried through Kysely.
 *
 * Why node:sqlite and not better-sqlite3: Kysely's SqliteDialect asks for a small part of
 * better-sqlite3's API (`prepare(sql)` → a statement with `reader`, `all`, `run`,
 * `iterate`, each taking the parameters as one array), and `DatabaseSync` has all of it
 * but two details, which `adapt` below bridges: its statements take parameters spread,
 * and `reader` is whether the statement has result columns (`columns()`). Booleans are
 * bound as 0/1 (node:sqlite binds no booleans). That is the whole adapter; a native
 * module would add a compile step on every install for nothing.
 *
 * Several processes may share one file (replicas on one machine): WAL lets readers run
 * beside the writer, every write transaction is `BEGIN IMMEDIATE` (it takes the write lock
 * first, so two transactions never deadlock upgrading a read lock, SQLite's SQLITE_BUSY
 * that no timeout cures), and `busy_timeout` makes a writer wait for the lock rather than
 * fail with "database is locked".
 *
 * One connection per process: Kysely runs one query at a time on it (its connection mutex),
 * and code that needs a transaction with no await inside (the ledger) runs it
 * synchronously on the same connection through `syncTransaction`.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  SqliteDialect,
  type SqliteDatabase as KyselySqliteDatabase,
  SqliteDriver,
} from "kysely";
import { migrateSqlite } from "./migrations.ts";
import { immediate } from "./transaction.ts";
import type { Schema } from "./schema.ts";

/** How long a writer waits for another process's write lock before giving up. */
export const SQLITE_BUSY_TIMEOUT_MS = 10_000;

export interface SqliteDatabase {
  readonly dialect: "sqlite";
  readonly db: Kysely<Schema>;
  /** The connection itself, for synchronous work (see `syncTransaction`). */
  readonly raw: DatabaseSync;
  /** The file, or `:memory:`. */
  readonly where: string;
  close(): Promise<void>;
}

/** Opens (creating it and its folder if needed) the file at `path`, and applies migrations. */
export function openSqlite(path: string): SqliteDatabase {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const raw = new DatabaseSync(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    raw.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    // Switching to WAL needs a moment of exclusive access: retried under the busy timeout.
    raw.exec("PRAGMA journal_mode = WAL");
    raw.exec("PRAGMA synchronous = NORMAL");
    const db = new Kysely<Schema>({ dialect: new NodeSqliteDialect(raw) });
    migrateSqlite(raw, db);
    return {
      dialect: "sqlite",
      db,
      raw,
      where: path,
      async close() {
        await db.destroy();
        if (raw.isOpen) raw.close();
      },
    };
  } catch (e) {
    if (raw.isOpen) raw.close();
    throw e;
  }
}

/**
 * Runs `fn` as one write transaction on the connection, synchronously: nothing else in
 * this process runs in between, and `BEGIN IMMEDIATE` keeps other processes out.
 * If Kysely has a transaction open on the connection right now (one of its async
 * transactions is between two awaits), waits for it through Kysely's connection mutex.
 */
export function syncTransaction<T>(sqlite: SqliteDatabase, fn: () => T): T | Promise<T> {
  if (!sqlite.raw.isTransaction) return immediate(sqlite.raw, fn);
  return sqlite.db.connection().execute(async () => immediate(sqlite.raw, fn));
}

/** Kysely's SQLite dialect over node:sqlite, whose write transactions begin IMMEDIATE. */
class NodeSqliteDialect extends SqliteDialect {
  readonly #raw: DatabaseSync;

  constructor(raw: DatabaseSync) {
    const database = adapt(raw);
    super({ database });
    this.#raw = raw;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: adapt(this.#raw) });
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("BEGIN IMMEDIATE"));
  }

  // The connection belongs to SqliteDatabase.close, which closes it after Kysely.
  override async destroy(): Promise<void> {}
}

function adapt(raw: DatabaseSync): KyselySqliteDatabase {
  return {
    close() {},
    prepare(sql: string) {
      const stmt = raw.prepare(sql);
      return {
        reader: stmt.columns().length > 0,
        all: (params) => stmt.all(...bind(params)),
        run: (params) => stmt.run(...bind(params)),
        iterate: (params) => stmt.iterate(...bind(params)),
      };
    },
  };
}

function bind(params: readonly unknown[]): SQLInputValue[] {
  return params.map((p) =>
    typeof p === "boolean" ? (p ? 1 : 0) : p === undefined ? null : (p as SQLInputValue),
  );
}
