/**
 * Gateway keys in the database: what the management API's /key/* routes read and write.
 * A key is stored by its token (SHA-256 hex) only; the key itself is never stored.
 *
 * Keys from the config file are listed beside them (`source: "config"`, written by
 * `syncConfigKeys` at start) so that lists, reports and joins see every key, but nothing
 * here changes them: every change applies to `source = 'api'` rows only.
 */
import { sql, type Updateable } from "kysely";
import type { Database } from "./database.ts";
import type { KeysTable } from "./schema.ts";

/** The NOTIFY channel of key changes (Postgres): replicas reload their keys on it. */
export const KEYS_CHANNEL = "imagegate_keys";

export type KeySource = "api" | "config";

export interface KeyRecord {
  token: string;
  keyAlias: string | undefined;
  /** undefined: every model. */
  models: string[] | undefined;
  rpmLimit: number | undefined;
  maxBudget: number | undefined;
  budgetDuration: string | undefined;
  /** Epoch ms of the next spend reset (with a budget duration). */
  budgetResetAt: number | undefined;
  /** Epoch ms after which the key is refused. */
  expires: number | undefined;
  blocked: boolean;
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  source: KeySource;
}

/** What a key is made with or changed to (absent: unchanged; null: cleared). */
export interface KeyFields {
  keyAlias?: string | null;
  models?: string[] | null;
  rpmLimit?: number | null;
  maxBudget?: number | null;
  /** Also (re)starts the period: the next reset is one duration from now. */
  budgetDuration?: string | null;
  expires?: number | null;
  metadata?: Record<string, unknown>;
}

export interface ConfigKey {
  token: string;
  alias: string;
  models?: readonly string[];
  rpmLimit?: number;
  maxBudget?: number;
}

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30s`, `10m`, `24h`, `30d` → milliseconds; undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return n > 0 ? n * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

function durationMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new RangeError(`'${text}' is not a duration like 30s, 10m, 24h or 30d`);
  return ms;
}

type Row = KeysTable & { blocked: number; metadata: string; source: string };

function toRecord(row: Row): KeyRecord {
  return {
    token: row.id,
    keyAlias: row.key_alias ?? undefined,
    models: row.models === null ? undefined : (JSON.parse(row.models) as string[]),
    rpmLimit: row.rpm_limit ?? undefined,
    maxBudget: row.max_budget ?? undefined,
    budgetDuration: row.budget_duration ?? undefined,
    budgetResetAt: row.budget_reset_at ?? undefined,
    expires: row.expires ?? undefined,
    blocked: row.blocked !== 0,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    source: row.source === "config" ? "config" : "api",
  };
}

function columns(fields: KeyFields, now: number): Updateable<KeysTable> {
  const out: Updateable<KeysTable> = {};
  if (fields.keyAlias !== undefined) out.key_alias = fields.keyAlias;
  if (fields.models !== undefined)
    out.models = fields.models === null ? null : JSON.stringify(fields.models);
  if (fields.rpmLimit !== undefined) out.rpm_limit = fields.rpmLimit;
  if (fields.maxBudget !== undefined) out.max_budget = fields.maxBudget;
  if (fields.budgetDuration !== undefined) {
    out.budget_duration = fields.budgetDuration;
    out.budget_reset_at =
      fields.budgetDuration === null ? null : now + durationMs(fields.budgetDuration);
  }
  if (fields.expires !== undefined) out.expires = fields.expires;
  if (fields.metadata !== undefined) out.metadata = JSON.stringify(fields.metadata);
  return out;
}

export class KeysRepository {
  readonly #database: Database;
  readonly #now: () => number;
  readonly #applySpend: () => Promise<void>;

  /**
   * `applySpend`: writes spend this replica knows and the database does not have yet (its
   * spend journal's); called before spend is read or moved, so that it is all there.
   */
  constructor(
    database: Database,
    now: () => number = Date.now,
    applySpend: () => Promise<void> = async () => {},
  ) {
    this.#database = database;
    this.#now = now;
    this.#applySpend = applySpend;
  }

  get #db() {
    return this.#database.db;
  }

  /**
   * Tells other replicas sharing a Postgres that keys changed (they LISTEN on
   * KEYS_CHANNEL and reload at once, rather than at their next periodic reload). A failed
   * notice only leaves them to that reload.
   */
  async #changed(token: string): Promise<void> {
    if (this.#database.dialect !== "postgres") return;
    await sql`SELECT pg_notify(${KEYS_CHANNEL}, ${token})`.execute(this.#db).catch(() => {});
  }

  /** Stores a new key (made through the API). Throws if the token exists. */
  async create(token: string, fields: KeyFields = {}): Promise<KeyRecord> {
    const now = this.#now();
    const row = await this.#db
      .insertInto("keys")
      .values({
        id: token,
        created_at: now,
        updated_at: now,
        source: "api",
        ...columns(fields, now),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.#changed(token);
    return toRecord(row as Row);
  }

  async get(token: string): Promise<KeyRecord | undefined> {
    const row = await this.#db
      .selectFrom("keys")
      .selectAll()
      .where("id", "=", token)
      .executeTakeFirst();
    return row === undefined ? undefined : toRecord(row as Row);
  }

  /** The key and its recorded spend (0 when none). */
  async info(token: string): Promise<(KeyRecord & { spend: number }) | undefined> {
    await this.#applySpend();
    const row = await this.#db
      .selectFrom("keys")
      .leftJoin("key_spend", "key_spend.key_id", "keys.id")
      .selectAll("keys")
      .select(sql<number>`coalesce(key_spend.usd, 0)`.as("spend"))
      .where("keys.id", "=", token)
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return { ...toRecord(row as unknown as Row), spend: Number(row.spend) };
  }

  /** Every key made through the API, with its settings (what authentication holds). */
  async apiKeys(): Promise<KeyRecord[]> {
    const rows = await this.#db
      .selectFrom("keys")
      .selectAll()
      .where("source", "=", "api")
      .orderBy("created_at")
      .execute();
    return rows.map((row) => toRecord(row as Row));
  }

  /** Every key's token, oldest first; `alias` narrows to one alias. */
  async list(filter: { alias?: string; source?: KeySource } = {}): Promise<string[]> {
    let q = this.#db.selectFrom("keys").select("id").orderBy("created_at").orderBy("id");
    if (filter.alias !== undefined) q = q.where("key_alias", "=", filter.alias);
    if (filter.source !== undefined) q = q.where("source", "=", filter.source);
    return (await q.execute()).map((r) => r.id);
  }

  /** Changes an API key; undefined if there is no such key (or it is the config's). */
  async update(token: string, fields: KeyFields): Promise<KeyRecord | undefined> {
    const now = this.#now();
    const row = await this.#db
      .updateTable("keys")
      .set({ ...columns(fields, now), updated_at: now })
      .where("id", "=", token)
      .where("source", "=", "api")
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) await this.#changed(token);
    return row === undefined ? undefined : toRecord(row as Row);
  }

  async setBlocked(token: string, blocked: boolean): Promise<KeyRecord | undefined> {
    const row = await this.#db
      .updateTable("keys")
      .set({ blocked: blocked ? 1 : 0, updated_at: this.#now() })
      .where("id", "=", token)
      .where("source", "=", "api")
      .returningAll()
      .executeTakeFirst();
    if (row !== undefined) await this.#changed(token);
    return row === undefined ? undefined : toRecord(row as Row);
  }

  /** Deletes API keys with their spend and holds; returns the tokens that were deleted. */
  async delete(tokens: readonly string[]): Promise<string[]> {
    await this.#applySpend();
    if (tokens.length === 0) return [];
    const deleted = await this.#db.transaction().execute(async (tx) => {
      const deleted = (
        await tx
          .deleteFrom("keys")
          .where("id", "in", [...tokens])
          .where("source", "=", "api")
          .returning("id")
          .execute()
      ).map((r) => r.id);
      if (deleted.length > 0) {
        await tx.deleteFrom("key_spend").where("key_id", "in", deleted).execute();
        await tx.deleteFrom("key_holds").where("key_id", "in", deleted).execute();
      }
      return deleted;
    });
    if (deleted.length > 0) await this.#changed(deleted[0]!);
    return deleted;
  }

  /**
   * Gives an API key a new token (the old one stops working at once); its spend, holds
   * and settings go with it. Undefined if there is no such key.
   */
  async regenerate(oldToken: string, newToken: string): Promise<KeyRecord | undefined> {
    await this.#applySpend();
    const now = this.#now();
    const record = await this.#db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable("keys")
        .set({ id: newToken, updated_at: now })
        .where("id", "=", oldToken)
        .where("source", "=", "api")
        .returningAll()
        .executeTakeFirst();
      if (row === undefined) return undefined;
      await tx
        .updateTable("key_spend")
        .set({ key_id: newToken })
        .where("key_id", "=", oldToken)
        .execute();
      await tx
        .updateTable("key_holds")
        .set({ key_id: newToken })
        .where("key_id", "=", oldToken)
        .execute();
      return toRecord(row as Row);
    });
    if (record !== undefined) await this.#changed(oldToken);
    return record;
  }

  /**
   * Starts a new budget period for every key whose period ended by `now`: its spend goes
   * back to 0 and its next reset is one duration later (skipping whole periods missed while
   * the gateway was down). Returns the tokens reset.
   */
  async resetDueBudgets(now: number = this.#now()): Promise<string[]> {
    // Spend of the ending period is in before it is set back to 0.
    await this.#applySpend();
    const due = await this.#db
      .selectFrom("keys")
      .select(["id", "budget_duration", "budget_reset_at"])
      .where("budget_reset_at", "<=", now)
      .where("budget_duration", "is not", null)
      .execute();
    const reset: string[] = [];
    for (const key of due) {
      const period = durationMs(key.budget_duration!);
      const missed = Math.floor((now - key.budget_reset_at!) / period) + 1;
      const next = key.budget_reset_at! + missed * period;
      await this.#db.transaction().execute(async (tx) => {
        // Only if no other replica reset it meanwhile.
        const moved = await tx
          .updateTable("keys")
          .set({ budget_reset_at: next })
          .where("id", "=", key.id)
          .where("budget_reset_at", "=", key.budget_reset_at)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) return;
        await tx.updateTable("key_spend").set({ usd: 0 }).where("key_id", "=", key.id).execute();
        reset.push(key.id);
      });
    }
    return reset;
  }

  /**
   * Lists the config file's keys in the table (`source: "config"`), as the file says now:
   * new ones added, changed ones updated, ones no longer in the file removed (their spend
   * stays, kept by token, should the key come back).
   */
  async syncConfigKeys(keys: readonly ConfigKey[]): Promise<void> {
    const now = this.#now();
    await this.#db.transaction().execute(async (tx) => {
      const tokens = keys.map((k) => k.token);
      let stale = tx.deleteFrom("keys").where("source", "=", "config");
      if (tokens.length > 0) stale = stale.where("id", "not in", tokens);
      await stale.execute();
      for (const k of keys) {
        const values = {
          key_alias: k.alias,
          models: k.models === undefined ? null : JSON.stringify(k.models),
          rpm_limit: k.rpmLimit ?? null,
          max_budget: k.maxBudget ?? null,
          updated_at: now,
        };
        await tx
          .insertInto("keys")
          .values({ id: k.token, created_at: now, source: "config", ...values })
          .onConflict((oc) =>
            oc
              .column("id")
              .doUpdateSet(values)
              // A token the API made is the API's: the config does not take it over.
              .where("keys.source", "=", "config"),
          )
          .execute();
      }
    });
  }
}
