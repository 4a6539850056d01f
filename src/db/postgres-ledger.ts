/**
 * The `Ledger` in Postgres, shared by every replica with the same `database_url`.
 *
 * - reserve: one round trip, the function `imagegate_reserve` (migrations.ts), which locks
 *   the key's `key_spend` row (`SELECT … FOR UPDATE`) and inserts the hold only if spend +
 *   open holds + it fit the limit (expired holds dropped first when they stand in the way). Every reservation of a
 *   key waits for that row lock, so two never decide on the same sum.
 * - settle: one statement (so one transaction) that deletes the hold and adds the cost to
 *   the spend row (taking its lock): a reservation sees both or neither. The cost is added
 *   even if the hold had expired meanwhile: the request was answered, and spent is spent.
 * - release: deletes the hold.
 * - add (keys without a budget): buffered and written in batches off the request path,
 *   one upsert per key per flush (nothing reads it to admit a request); `spent` and
 *   `close` flush first.
 */
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Hold, Ledger, Reservation } from "../auth/ledger.ts";
import type pg from "pg";
import type { PostgresDatabase } from "./postgres.ts";
import { QUERY_TIMEOUT_MS } from "./postgres-link.ts";
import type { JournalEntry } from "./spend-journal.ts";
import { EPSILON } from "./sqlite-ledger.ts";

export interface PostgresLedgerOptions {
  /** How long a hold lives if its request never settles it (its process died). */
  holdTtlMs?: number;
  /** How often buffered spend of keys without a budget is written. */
  flushIntervalMs?: number;
  now?: () => number;
  /** Told when a background flush fails (the amounts stay buffered for the next one). */
  onFlushError?: (error: unknown) => void;
}

export class PostgresLedger implements Ledger {
  readonly #pg: PostgresDatabase;
  readonly #holdTtlMs: number;
  readonly #now: () => number;
  readonly #onFlushError: (error: unknown) => void;
  /** Key id → spend not yet written. */
  #pending = new Map<string, number>();
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(database: PostgresDatabase, options: PostgresLedgerOptions = {}) {
    this.#pg = database;
    this.#holdTtlMs = options.holdTtlMs ?? 15 * 60_000;
    this.#now = options.now ?? Date.now;
    this.#onFlushError = options.onFlushError ?? (() => {});
    this.#timer = setInterval(() => {
      this.flush().catch(this.#onFlushError);
    }, options.flushIntervalMs ?? 1000).unref();
  }

  async reserve(key: string, usd: number, limit: number): Promise<Reservation> {
    const now = this.#now();
    const id = randomUUID();
    // Named: each connection parses and plans it once.
    const { rows } = await this.#pg.pool.query<{ ok: boolean; spent: number; held: number }>({
      name: "imagegate_reserve",
      text: "SELECT ok, spent, held FROM imagegate_reserve($1, $2, $3, $4, $5, $6, $7)",
      values: [key, id, usd, limit, now, now + this.#holdTtlMs, EPSILON],
      query_timeout: QUERY_TIMEOUT_MS,
    } as pg.QueryConfig);
    const r = rows[0]!;
    return r.ok
      ? { ok: true, hold: { id, key, usd } }
      : { ok: false, spent: r.spent, held: r.held };
  }

  /**
   * A budget lease (journaled-ledger.ts): one hold of at least `min` and at most `want`,
   * sized to `1/share` of what the key has left, if `min` fits `limit` beside recorded spend
   * and open holds; atomic, one round trip (`imagegate_lease`, migrations.ts). `granted` is
   * 0 when even `min` does not fit.
   */
  async lease(
    key: string,
    id: string,
    min: number,
    want: number,
    share: number,
    limit: number,
  ): Promise<{ granted: number; spent: number; held: number }> {
    const now = this.#now();
    const { rows } = await this.#pg.pool.query<{ granted: number; spent: number; held: number }>({
      name: "imagegate_lease",
      text: "SELECT granted, spent, held FROM imagegate_lease($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      values: [key, id, min, want, share, limit, now, now + this.#holdTtlMs, EPSILON],
      query_timeout: QUERY_TIMEOUT_MS,
    } as pg.QueryConfig);
    return rows[0]!;
  }

  async settle(hold: Hold, usd: number): Promise<void> {
    // The hold's row says whose it is now (a regenerated key's holds moved to its new token).
    await sql`WITH dropped AS (DELETE FROM key_holds WHERE id = ${hold.id} RETURNING key_id)
      INSERT INTO key_spend (key_id, usd)
      VALUES (coalesce((SELECT key_id FROM dropped), ${hold.key}), ${Math.max(usd, 0)})
      ON CONFLICT (key_id) DO UPDATE SET usd = key_spend.usd + excluded.usd`.execute(this.#pg.db);
  }

  async release(hold: Hold): Promise<void> {
    await this.#pg.db.deleteFrom("key_holds").where("id", "=", hold.id).execute();
  }

  async add(key: string, usd: number): Promise<void> {
    if (usd > 0) this.#pending.set(key, (this.#pending.get(key) ?? 0) + usd);
  }

  async spent(key: string): Promise<number> {
    await this.flush();
    const row = await this.#pg.db
      .selectFrom("key_spend")
      .select("usd")
      .where("key_id", "=", key)
      .executeTakeFirst();
    return row?.usd ?? 0;
  }

  /** Writes the buffered spend of keys without a budget; one flush at a time. */
  flush(): Promise<void> {
    const run = this.#flushing.then(() => this.#write());
    this.#flushing = run.catch(() => {});
    return run;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      await this.#pg.db
        .insertInto("key_spend")
        .values([...batch].map(([key_id, usd]) => ({ key_id, usd })))
        .onConflict((oc) =>
          oc.column("key_id").doUpdateSet({ usd: sql`key_spend.usd + excluded.usd` }),
        )
        .execute();
    } catch (e) {
      // Kept for the next flush: added back to whatever arrived meanwhile.
      for (const [key, usd] of batch) this.#pending.set(key, (this.#pending.get(key) ?? 0) + usd);
      throw e;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

/**
 * Applies spend journal entries (spend-journal.ts) in one statement, so one transaction:
 * each entry's id is recorded in `spend_journal_marks`, and only entries whose id was not
 * there already drop their hold (or lower their lease's by their cost), add their cost to
 * the key (the hold's key, which a regenerated key moved) and insert their spend-log row. Replaying entries already
 * applied changes nothing.
 * Returns how many entries were new.
 */
export async function applyJournal(
  database: PostgresDatabase,
  entries: readonly JournalEntry[],
  now: number = Date.now(),
): Promise<number> {
  if (entries.length === 0) return 0;
  const logs = entries.flatMap((e) => (e.log === undefined ? [] : [{ ...e.log, entry: e.id }]));
  const { rows } = await database.pool.query<{ fresh: number }>({
    text: APPLY_JOURNAL,
    values: [
      entries.map((e) => e.id),
      entries.map((e) => e.key),
      entries.map((e) => Math.max(e.usd, 0)),
      entries.map((e) => e.hold?.id ?? null),
      now,
      JSON.stringify(logs),
      entries.map((e) => e.lease?.id ?? null),
    ],
    // A batch may be large; still, a database that stopped answering is found out.
    query_timeout: 6 * QUERY_TIMEOUT_MS,
  } as pg.QueryConfig);
  return rows[0]?.fresh ?? 0;
}

const LOG_COLUMNS =
  "id, request_id, api_key, key_alias, end_user, model, model_id, provider, status, spend, images, size, quality, start_time, end_time, attempts, attempt_log";

// Rows are upserted in key order, so two replicas' batches lock key rows in the same order.
// An entry that only carries a spend-log row (no cost, no hold) touches no key. An entry
// under a lease lowers the lease's hold by its cost, unless an entry of the same batch ends
// that hold (no row is changed twice in one statement). Every CTE sees the rows as they were
// before the statement, so a hold dropped here still names the key its cost goes to (the
// hold's key: a regenerated key moved its holds to its new token).
const APPLY_JOURNAL = `
WITH batch AS (
  SELECT DISTINCT ON (id) id, key_id, usd, hold, lease
  FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $7::text[])
    AS b(id, key_id, usd, hold, lease)
),
fresh AS (
  INSERT INTO spend_journal_marks (id, applied_at) SELECT id, $5 FROM batch
  ON CONFLICT (id) DO NOTHING RETURNING id
),
live AS (
  SELECT b.* FROM batch b JOIN fresh f ON f.id = b.id
),
dropped AS (
  DELETE FROM key_holds h USING live b WHERE h.id = b.hold
),
shrunk AS (
  UPDATE key_holds h SET usd = greatest(h.usd - s.usd, 0)
  FROM (
    SELECT lease, sum(usd) AS usd FROM live
    WHERE lease IS NOT NULL AND lease NOT IN (SELECT hold FROM live WHERE hold IS NOT NULL)
    GROUP BY lease
  ) s
  WHERE h.id = s.lease
),
added AS (
  INSERT INTO key_spend (key_id, usd)
  SELECT coalesce(h.key_id, b.key_id), sum(b.usd)
  FROM live b LEFT JOIN key_holds h ON h.id = coalesce(b.hold, b.lease)
  WHERE b.usd > 0 OR b.hold IS NOT NULL
  GROUP BY 1 ORDER BY 1
  ON CONFLICT (key_id) DO UPDATE SET usd = key_spend.usd + excluded.usd
  RETURNING 1
),
logged AS (
  INSERT INTO spend_logs (${LOG_COLUMNS})
  SELECT ${LOG_COLUMNS.split(", ")
    .map((c) => `l.${c}`)
    .join(", ")}
  FROM jsonb_to_recordset($6::jsonb) AS l(
    entry text, id text, request_id text, api_key text, key_alias text, end_user text,
    model text, model_id text, provider text, status text, spend float8, images integer,
    size text, quality text, start_time bigint, end_time bigint, attempts integer,
    attempt_log text
  ) JOIN fresh f ON f.id = l.entry
  ON CONFLICT (id) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM fresh) AS fresh, (SELECT count(*) FROM added) AS keys,
  (SELECT count(*) FROM logged) AS logs`;

/** Forgets applied journal ids older than `before` (epoch ms): no journal keeps entries that long. */
export async function pruneJournalMarks(database: PostgresDatabase, before: number): Promise<void> {
  await database.db.deleteFrom("spend_journal_marks").where("applied_at", "<", before).execute();
}
