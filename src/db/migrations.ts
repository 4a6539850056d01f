/**
 * The schema's versions, written once with Kysely's schema builder and compiled for the
 * database at hand, applied in order at open. Applied versions are rows of
 * `imagegate_migrations`; a version is never edited once released, only followed by a new one.
 *
 * Postgres: the runner holds a session advisory lock for the whole run, so replicas started
 * at once apply each version exactly once (the others wait, then find it applied); each
 * version is one transaction. SQLite: the whole run is one `BEGIN IMMEDIATE` transaction,
 * which serializes processes opening the same file.
 *
 * Files from before this module (the ledger's `key_spend` and `key_holds`, made with
 * CREATE TABLE IF NOT EXISTS) are version 1's first two tables as they were, so version 1
 * adopts them.
 */
import type { DatabaseSync } from "node:sqlite";
import { type CompiledQuery, type Kysely, sql } from "kysely";
import type pg from "pg";
import { immediate } from "./transaction.ts";

type Dialect = "sqlite" | "postgres";

export interface Migration {
  version: number;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: DDL addresses tables the typed schema does not have yet
  up(db: Kysely<any>, dialect: Dialect): CompiledQuery[];
}

/** Chosen once; any constant works as long as nothing else in the database takes it. */
export const MIGRATION_LOCK_ID = 0x1a6e_6a7e;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "keys, spend, holds, spend log",
    up(db, dialect) {
      const steps = [
        db.schema
          .createTable("key_spend")
          .ifNotExists()
          .addColumn("key_id", "text", (c) => c.primaryKey())
          .addColumn("usd", "double precision", (c) => c.notNull()),
        db.schema
          .createTable("key_holds")
          .ifNotExists()
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("key_id", "text", (c) => c.notNull())
          .addColumn("usd", "double precision", (c) => c.notNull())
          .addColumn("expires_at", "bigint", (c) => c.notNull()),
        db.schema.createIndex("key_holds_by_key").ifNotExists().on("key_holds").column("key_id"),
        db.schema
          .createTable("keys")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("key_alias", "text")
          .addColumn("models", "text")
          .addColumn("rpm_limit", "integer")
          .addColumn("max_budget", "double precision")
          .addColumn("budget_duration", "text")
          .addColumn("budget_reset_at", "bigint")
          .addColumn("expires", "bigint")
          .addColumn("blocked", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("metadata", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .addColumn("source", "text", (c) => c.notNull().defaultTo("api")),
        db.schema.createIndex("keys_by_alias").on("keys").column("key_alias"),
        db.schema
          .createTable("spend_logs")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("request_id", "text", (c) => c.notNull())
          .addColumn("api_key", "text")
          .addColumn("key_alias", "text")
          .addColumn("end_user", "text")
          .addColumn("model", "text")
          .addColumn("model_id", "text")
          .addColumn("provider", "text")
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("spend", "double precision", (c) => c.notNull())
          .addColumn("images", "integer", (c) => c.notNull())
          .addColumn("size", "text")
          .addColumn("quality", "text")
          .addColumn("start_time", "bigint", (c) => c.notNull())
          .addColumn("end_time", "bigint", (c) => c.notNull())
          .addColumn("attempts", "integer", (c) => c.notNull()),
        db.schema.createIndex("spend_logs_by_time").on("spend_logs").column("start_time"),
        db.schema
          .createIndex("spend_logs_by_key")
          .on("spend_logs")
          .columns(["api_key", "start_time"]),
        db.schema.createIndex("spend_logs_by_request").on("spend_logs").column("request_id"),
      ].map((q) => q.compile());
      if (dialect === "postgres") steps.push(sql.raw(PG_RESERVE_FUNCTION).compile(db));
      return steps;
    },
  },
  {
    version: 2,
    name: "applied spend journal entries",
    up(db) {
      return [
        db.schema
          .createTable("spend_journal_marks")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("applied_at", "bigint", (c) => c.notNull()),
        db.schema
          .createIndex("spend_journal_marks_by_time")
          .on("spend_journal_marks")
          .column("applied_at"),
      ].map((q) => q.compile());
    },
  },
  {
    version: 3,
    name: "a cheaper reservation",
    up(db, dialect) {
      return dialect === "postgres" ? [sql.raw(PG_RESERVE_FUNCTION_V3).compile(db)] : [];
    },
  },
  {
    version: 4,
    name: "each request's attempts in the spend log",
    up(db) {
      return [db.schema.alterTable("spend_logs").addColumn("attempt_log", "text").compile()];
    },
  },
  {
    version: 5,
    name: "budget leases",
    up(db, dialect) {
      return dialect === "postgres" ? [sql.raw(PG_LEASE_FUNCTION).compile(db)] : [];
    },
  },
];

/**
 * The decision `imagegate_reserve` v3 and `imagegate_lease` share, as PL/pgSQL statements
 * (their variables `s` and `h`): lock the key's spend row (made if missing), sum its holds,
 * and if `need` does not fit, drop its expired holds and sum again; still not fitting,
 * return `refusal`. The transaction commits without waiting for its WAL to reach disk.
 */
function lockAndFit(need: string, refusal: string): string {
  return `  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT key_spend.usd INTO s FROM key_spend WHERE key_id = p_key FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO key_spend (key_id, usd) VALUES (p_key, 0) ON CONFLICT (key_id) DO NOTHING;
    SELECT key_spend.usd INTO s FROM key_spend WHERE key_id = p_key FOR UPDATE;
  END IF;
  SELECT coalesce(sum(key_holds.usd), 0) INTO h FROM key_holds WHERE key_id = p_key;
  IF s + h + ${need} > p_limit + p_epsilon THEN
    DELETE FROM key_holds WHERE key_id = p_key AND expires_at <= p_now;
    IF FOUND THEN
      SELECT coalesce(sum(key_holds.usd), 0) INTO h FROM key_holds WHERE key_id = p_key;
    END IF;
    IF s + h + ${need} > p_limit + p_epsilon THEN
      RETURN QUERY SELECT ${refusal};
      RETURN;
    END IF;
  END IF;`;
}

/**
 * A budget lease in one round trip (journaled-ledger.ts): the same decision as
 * `imagegate_reserve` v3 for `p_min` (the request at hand), but the hold it inserts is
 * sized `p_want` when that leaves the key enough, else `1/p_share` of what it has left,
 * never less than `p_min`. `granted` is 0 when `p_min` does not fit.
 */
const PG_LEASE_FUNCTION = `
CREATE OR REPLACE FUNCTION imagegate_lease(
  p_key text, p_hold text, p_min double precision, p_want double precision,
  p_share double precision, p_limit double precision,
  p_now bigint, p_expires bigint, p_epsilon double precision
) RETURNS TABLE (granted double precision, spent double precision, held double precision)
LANGUAGE plpgsql AS $$
DECLARE
  s double precision;
  h double precision;
  g double precision;
BEGIN
${lockAndFit("p_min", "0::double precision, s, h")}
  g := greatest(p_min, least(p_want, (p_limit - s - h) / p_share));
  INSERT INTO key_holds (id, key_id, usd, expires_at) VALUES (p_hold, p_key, g, p_expires);
  RETURN QUERY SELECT g, s, h;
END
$$`;

/**
 * Version 3 of `imagegate_reserve`, the same decision in fewer statements on the common
 * path (the key's row exists, the hold fits): the row is made only when missing, expired
 * holds are dropped only when the sum does not fit without them (so the answer is the
 * same), and the transaction commits without waiting for its WAL to reach disk
 * (`synchronous_commit` off for this transaction only). A hold lost to a database crash
 * costs nothing but its protection for the requests then in flight: their journaled cost
 * is written all the same.
 */
const PG_RESERVE_FUNCTION_V3 = `
CREATE OR REPLACE FUNCTION imagegate_reserve(
  p_key text, p_hold text, p_usd double precision, p_limit double precision,
  p_now bigint, p_expires bigint, p_epsilon double precision
) RETURNS TABLE (ok boolean, spent double precision, held double precision)
LANGUAGE plpgsql AS $$
DECLARE
  s double precision;
  h double precision;
BEGIN
${lockAndFit("p_usd", "false, s, h")}
  INSERT INTO key_holds (id, key_id, usd, expires_at) VALUES (p_hold, p_key, p_usd, p_expires);
  RETURN QUERY SELECT true, s, h;
END
$$`;

/**
 * A reservation in one round trip: lock the key's spend row (made if missing), drop its
 * expired holds, and add the hold only if spend + open holds + the new hold fit the limit.
 * Each statement of a plpgsql function takes a fresh snapshot, so once the row lock is
 * granted the sum sees every hold the previous lock holder committed.
 */
const PG_RESERVE_FUNCTION = `
CREATE OR REPLACE FUNCTION imagegate_reserve(
  p_key text, p_hold text, p_usd double precision, p_limit double precision,
  p_now bigint, p_expires bigint, p_epsilon double precision
) RETURNS TABLE (ok boolean, spent double precision, held double precision)
LANGUAGE plpgsql AS $$
DECLARE
  s double precision;
  h double precision;
BEGIN
  INSERT INTO key_spend (key_id, usd) VALUES (p_key, 0) ON CONFLICT (key_id) DO NOTHING;
  SELECT key_spend.usd INTO s FROM key_spend WHERE key_id = p_key FOR UPDATE;
  DELETE FROM key_holds WHERE key_id = p_key AND expires_at <= p_now;
  SELECT coalesce(sum(key_holds.usd), 0) INTO h FROM key_holds WHERE key_id = p_key;
  IF s + h + p_usd > p_limit + p_epsilon THEN
    RETURN QUERY SELECT false, s, h;
    RETURN;
  END IF;
  INSERT INTO key_holds (id, key_id, usd, expires_at) VALUES (p_hold, p_key, p_usd, p_expires);
  RETURN QUERY SELECT true, s, h;
END
$$`;

const CREATE_VERSIONS = `CREATE TABLE IF NOT EXISTS imagegate_migrations (
  version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL
)`;

/** Applies the pending versions to a SQLite connection, in one IMMEDIATE transaction. */
// biome-ignore lint/suspicious/noExplicitAny: see Migration.up
export function migrateSqlite(raw: DatabaseSync, db: Kysely<any>): number[] {
  return immediate(raw, () => {
    raw.exec(CREATE_VERSIONS);
    const done = new Set(
      (raw.prepare("SELECT version FROM imagegate_migrations").all() as { version: number }[]).map(
        (r) => r.version,
      ),
    );
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const q of m.up(db, "sqlite")) {
        raw.prepare(q.sql).run(...(q.parameters as never[]));
      }
      raw
        .prepare("INSERT INTO imagegate_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .run(m.version, m.name, Date.now());
      applied.push(m.version);
    }
    return applied;
  });
}

/** Applies the pending versions to Postgres, one replica at a time. Returns the versions it applied. */
// biome-ignore lint/suspicious/noExplicitAny: see Migration.up
export async function migratePostgres(pool: pg.Pool, db: Kysely<any>): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_ID]);
    try {
      await client.query(CREATE_VERSIONS);
      const { rows } = await client.query<{ version: number }>(
        "SELECT version FROM imagegate_migrations",
      );
      const done = new Set(rows.map((r) => Number(r.version)));
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query("BEGIN");
        try {
          for (const q of m.up(db, "postgres")) await client.query(q.sql, [...q.parameters]);
          await client.query(
            "INSERT INTO imagegate_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            [m.version, m.name, Date.now()],
          );
          await client.query("COMMIT");
        } catch (e) {
          await client.query("ROLLBACK");
          throw e;
        }
        applied.push(m.version);
      }
      return applied;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_ID]);
    }
  } finally {
    client.release();
  }
}
