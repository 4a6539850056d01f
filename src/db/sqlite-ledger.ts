/**
 * The embedded `Ledger`: each key's spend and the holds of its requests in flight, in the
 * SQLite database (sqlite.ts) so budgets survive restarts; `:memory:` for dev and tests.
 *
 * A reservation is one `BEGIN IMMEDIATE` transaction (read spend and open holds, insert the
 * hold), so processes sharing the file cannot race; node:sqlite is synchronous, so within
 * one process no other request runs between the read and the write. Holds carry an expiry
 * so that a process that dies mid-request frees its holds in time. Tables: `key_spend`
 * and `key_holds` (schema.ts).
 *
 * Spend is kept by key id (see keys.ts). Files from before that kept it by key name, in the
 * table `spend`: on open, each such row whose name is a configured key's moves to that key's
 * id (rows of names no longer configured stay there, and move when the name comes back).
 */
import { randomUUID } from "node:crypto";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Hold, Ledger, Reservation } from "../auth/ledger.ts";
import { openSqlite, type SqliteDatabase, syncTransaction } from "./sqlite.ts";
import { immediate } from "./transaction.ts";

/** Floating-point slack: three holds of $0.016 must fit a $0.048 budget. */
export const EPSILON = 1e-9;

export interface SqliteLedgerOptions {
  /** Key name → key id, to carry spend kept by name (older files) over to the key's id. */
  names?: ReadonlyMap<string, string>;
  /** How long a hold lives if its request never settles it (its process died). */
  holdTtlMs?: number;
  now?: () => number;
}

export class SqliteLedger implements Ledger {
  readonly #sqlite: SqliteDatabase;
  /** Whether close() closes the database (this ledger opened it). */
  readonly #owned: boolean;
  readonly #db: DatabaseSync;
  readonly #holdTtlMs: number;
  readonly #now: () => number;
  readonly #spent: StatementSync;
  readonly #held: StatementSync;
  readonly #expire: StatementSync;
  readonly #insertHold: StatementSync;
  readonly #deleteHold: StatementSync;
  readonly #addSpend: StatementSync;
  /** Names in the old by-name table that no configured key has (their spend stays there). */
  readonly unmigratedNames: readonly string[];

  /** A file path (opened, and closed by close()) or a database opened already (left open). */
  constructor(database: string | SqliteDatabase, options: SqliteLedgerOptions = {}) {
    this.#owned = typeof database === "string";
    this.#sqlite = typeof database === "string" ? openSqlite(database) : database;
    this.#db = this.#sqlite.raw;
    this.#holdTtlMs = options.holdTtlMs ?? 15 * 60_000;
    this.#now = options.now ?? Date.now;
    this.#spent = this.#db.prepare("SELECT usd FROM key_spend WHERE key_id = ?");
    this.#held = this.#db.prepare(
      "SELECT coalesce(sum(usd), 0) AS usd FROM key_holds WHERE key_id = ?",
    );
    this.#expire = this.#db.prepare("DELETE FROM key_holds WHERE key_id = ? AND expires_at <= ?");
    this.#insertHold = this.#db.prepare(
      "INSERT INTO key_holds (id, key_id, usd, expires_at) VALUES (?, ?, ?, ?)",
    );
    this.#deleteHold = this.#db.prepare("DELETE FROM key_holds WHERE id = ? RETURNING key_id");
    this.#addSpend = this.#db.prepare(
      "INSERT INTO key_spend (key_id, usd) VALUES (?, ?) ON CONFLICT(key_id) DO UPDATE SET usd = usd + excluded.usd",
    );
    this.unmigratedNames = this.#migrateByName(options.names ?? new Map());
  }

  async reserve(key: string, usd: number, limit: number): Promise<Reservation> {
    return this.#transaction(() => {
      const now = this.#now();
      this.#expire.run(key, now);
      const spent = this.#spentBy(key);
      const held = (this.#held.get(key) as { usd: number }).usd;
      if (spent + held + usd > limit + EPSILON) return { ok: false, spent, held };
      const hold = { id: randomUUID(), key, usd };
      this.#insertHold.run(hold.id, key, usd, now + this.#holdTtlMs);
      return { ok: true, hold };
    });
  }

  async settle(hold: Hold, usd: number): Promise<void> {
    await this.#transaction(() => {
      // The hold's row says whose it is now (a regenerated key's holds moved to its new token).
      const row = this.#deleteHold.get(hold.id) as { key_id: string } | undefined;
      if (usd > 0) this.#addSpend.run(row?.key_id ?? hold.key, usd);
    });
  }

  async release(hold: Hold): Promise<void> {
    await this.#transaction(() => this.#deleteHold.run(hold.id));
  }

  async add(key: string, usd: number): Promise<void> {
    if (usd > 0) await this.#transaction(() => this.#addSpend.run(key, usd));
  }

  async spent(key: string): Promise<number> {
    return this.#spentBy(key);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#sqlite.close();
  }

  #spentBy(key: string): number {
    return (this.#spent.get(key) as { usd: number } | undefined)?.usd ?? 0;
  }

  /** Runs `fn` in one write transaction (IMMEDIATE: the write lock first, so no other process interleaves). */
  #transaction<T>(fn: () => T): T | Promise<T> {
    return syncTransaction(this.#sqlite, fn);
  }

  /** Moves spend kept by key name (the table `spend`, before key ids) to the named keys' ids. */
  #migrateByName(names: ReadonlyMap<string, string>): string[] {
    const legacy = this.#db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'spend'")
      .get();
    if (legacy === undefined) return [];
    return immediate(this.#db, () => {
      const rows = this.#db.prepare("SELECT key, usd FROM spend").all() as {
        key: string;
        usd: number;
      }[];
      const drop = this.#db.prepare("DELETE FROM spend WHERE key = ?");
      const left: string[] = [];
      for (const row of rows) {
        const id = names.get(row.key);
        if (id === undefined) {
          left.push(row.key);
          continue;
        }
        if (row.usd > 0) this.#addSpend.run(id, row.usd);
        drop.run(row.key);
      }
      if (left.length === 0) this.#db.exec("DROP TABLE spend");
      return left;
    });
  }
}
