/**
 * The spend log: one row per request, answered or failed (the management API's
 * `/spend/logs`), and the report that sums it (`/global/spend/report`).
 *
 * Writes are off the request path: `SpendLogWriter.write` only appends to a buffer, which
 * is written as one multi-row INSERT every `flushIntervalMs` (or sooner once `maxBatch`
 * rows wait), and on `close` (shutdown). Each row carries an id made here, so writing the
 * same row twice (a retried batch, a replayed journal) inserts it once.
 *
 * Reports aggregate in SQL (GROUP BY), never by reading rows into JavaScript.
 */
import { randomUUID } from "node:crypto";
import { type Expression, type SqlBool, sql } from "kysely";
import type { AttemptLogEntry } from "../call/call-info.ts";
import type { Database } from "./database.ts";
import type { SpendLogsTable } from "./schema.ts";

/** A stored attempt log; rows written before migration 4 (or unreadable) have none. */
function parseAttemptLog(text: string | null): AttemptLogEntry[] {
  if (text === null) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? (parsed as AttemptLogEntry[]) : [];
  } catch {
    return [];
  }
}

export interface SpendLogEntry {
  requestId: string;
  /** The key's token; undefined on an open gateway. */
  apiKey?: string;
  keyAlias?: string;
  /** The request's `user` field. */
  endUser?: string;
  /** The public model (group) name. */
  model?: string;
  /** The deployment that answered (or was tried last). */
  modelId?: string;
  provider?: string;
  status: "success" | "failure";
  spend: number;
  images: number;
  size?: string;
  quality?: string;
  /** Epoch ms. */
  startTime: number;
  endTime: number;
  attempts: number;
  /** Each upstream attempt in order: the deployment, and its error when it failed. */
  attemptLog?: readonly AttemptLogEntry[];
}

/** A row as `/spend/logs` answers it (the contract's field names). */
export interface SpendLogRow {
  request_id: string;
  api_key: string | null;
  key_alias: string | null;
  end_user: string | null;
  model: string | null;
  model_id: string | null;
  provider: string | null;
  status: string;
  spend: number;
  images: number;
  size: string | null;
  quality: string | null;
  /** ISO 8601, UTC. */
  startTime: string;
  endTime: string;
  attempts: number;
  attempt_log: AttemptLogEntry[];
}

/**
 * Where rows go instead of the writer's memory buffer: the spend journal with
 * `database_url` (journaled-ledger.ts), so that rows of requests answered while the
 * database is down outlast a crash and are written once, like their spend.
 */
export interface SpendLogSink {
  append(row: SpendLogsTable): void;
  /** Writes what was appended (as far as the database is reachable). */
  flush(): Promise<void>;
}

export interface SpendLogWriterOptions {
  /** Rows go here instead of the buffer (which then stays empty). */
  sink?: SpendLogSink;
  flushIntervalMs?: number;
  /** Rows that trigger a flush before the interval is up. */
  maxBatch?: number;
  /** Rows kept while the database cannot be written; past it the oldest are dropped. */
  maxPending?: number;
  /** Told when a background flush fails (its rows stay buffered for the next one). */
  onError?: (error: unknown) => void;
}

export class SpendLogWriter {
  readonly #database: Database;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  readonly #onError: (error: unknown) => void;
  readonly #timer: NodeJS.Timeout;
  readonly #sink: SpendLogSink | undefined;
  #pending: SpendLogsTable[] = [];
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;
  /** Rows dropped because the buffer was full (the database was down too long). */
  dropped = 0;

  constructor(database: Database, options: SpendLogWriterOptions = {}) {
    this.#database = database;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#maxPending = options.maxPending ?? 100_000;
    this.#onError = options.onError ?? (() => {});
    this.#sink = options.sink;
    this.#timer = setInterval(() => this.#background(), options.flushIntervalMs ?? 1000).unref();
  }

  /** Queues one row; returns at once. */
  write(entry: SpendLogEntry): void {
    if (this.#closed) throw new Error("the spend log writer is closed");
    if (this.#sink !== undefined) {
      this.#sink.append(toRow(entry));
      return;
    }
    this.#pending.push(toRow(entry));
    if (this.#pending.length > this.#maxPending) {
      this.dropped += this.#pending.length - this.#maxPending;
      this.#pending.splice(0, this.#pending.length - this.#maxPending);
    }
    if (this.#pending.length >= this.#maxBatch) this.#background();
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Writes every queued row; one flush at a time. */
  flush(): Promise<void> {
    const run = this.#flushing.then(() => this.#writeAll());
    this.#flushing = run.catch(() => {});
    return run;
  }

  /** Stops the timer and writes what is queued. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
  }

  #background(): void {
    this.flush().catch(this.#onError);
  }

  async #writeAll(): Promise<void> {
    if (this.#sink !== undefined) return this.#sink.flush();
    while (this.#pending.length > 0) {
      const batch = this.#pending.slice(0, this.#maxBatch);
      await this.#database.db
        .insertInto("spend_logs")
        .values(batch)
        .onConflict((oc) => oc.column("id").doNothing())
        .execute();
      // Removed only once written: a failed batch stays queued, first in line.
      this.#pending.splice(0, batch.length);
    }
  }
}

function toRow(e: SpendLogEntry): SpendLogsTable {
  return {
    id: randomUUID(),
    request_id: e.requestId,
    api_key: e.apiKey ?? null,
    key_alias: e.keyAlias ?? null,
    end_user: e.endUser ?? null,
    model: e.model ?? null,
    model_id: e.modelId ?? null,
    provider: e.provider ?? null,
    status: e.status,
    spend: e.spend,
    images: e.images,
    size: e.size ?? null,
    quality: e.quality ?? null,
    start_time: e.startTime,
    end_time: e.endTime,
    attempts: e.attempts,
    attempt_log: e.attemptLog === undefined ? null : JSON.stringify(e.attemptLog),
  };
}

/** Deletes the rows that started before `before` (epoch ms; retention); returns how many. */
export async function pruneSpendLogs(database: Database, before: number): Promise<number> {
  const result = await database.db
    .deleteFrom("spend_logs")
    .where("start_time", "<", before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** A time range in epoch ms: `from` included, `to` excluded. */
export interface TimeRange {
  from: number;
  to: number;
}

/**
 * `start_date` and `end_date` (YYYY-MM-DD, UTC, both days included) as a TimeRange;
 * undefined if either is not such a date or the end is before the start.
 */
export function dayRange(startDate: string, endDate: string): TimeRange | undefined {
  const from = dayStart(startDate);
  const end = dayStart(endDate);
  if (from === undefined || end === undefined || end < from) return undefined;
  return { from, to: end + 86_400_000 };
}

function dayStart(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return undefined;
  const ms = Date.parse(`${text}T00:00:00Z`);
  // Date.parse accepts 2026-02-31 as March 3rd: the round trip must give the same day back.
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== text) return undefined;
  return ms;
}

export interface SpendLogFilter extends TimeRange {
  apiKey?: string;
  model?: string;
  endUser?: string;
  requestId?: string;
  status?: SpendLogEntry["status"];
  /** At most this many rows, newest first. */
  limit?: number;
}

/** The rows of a time range, newest first. */
export async function spendLogs(
  database: Database,
  filter: SpendLogFilter,
): Promise<SpendLogRow[]> {
  let q = database.db
    .selectFrom("spend_logs")
    .selectAll()
    .where("start_time", ">=", filter.from)
    .where("start_time", "<", filter.to);
  if (filter.apiKey !== undefined) q = q.where("api_key", "=", filter.apiKey);
  if (filter.model !== undefined) q = q.where("model", "=", filter.model);
  if (filter.endUser !== undefined) q = q.where("end_user", "=", filter.endUser);
  if (filter.requestId !== undefined) q = q.where("request_id", "=", filter.requestId);
  if (filter.status !== undefined) q = q.where("status", "=", filter.status);
  q = q.orderBy("start_time", "desc").orderBy("id");
  if (filter.limit !== undefined) q = q.limit(filter.limit);
  const rows = await q.execute();
  return rows.map((r) => ({
    request_id: r.request_id,
    api_key: r.api_key,
    key_alias: r.key_alias,
    end_user: r.end_user,
    model: r.model,
    model_id: r.model_id,
    provider: r.provider,
    status: r.status,
    spend: r.spend,
    images: r.images,
    size: r.size,
    quality: r.quality,
    startTime: new Date(r.start_time).toISOString(),
    endTime: new Date(r.end_time).toISOString(),
    attempts: r.attempts,
    attempt_log: parseAttemptLog(r.attempt_log),
  }));
}

export const REPORT_GROUPS = ["api_key", "model", "provider", "end_user", "day"] as const;
export type ReportGroup = (typeof REPORT_GROUPS)[number];

export interface ReportRow {
  /** The group's value (a token, model, provider, user, or YYYY-MM-DD); null where unset. */
  group: string | null;
  spend: number;
  requests: number;
  images: number;
}

/** Spend, requests and images of a time range, grouped; largest spend first. */
export async function spendReport(
  database: Database,
  range: TimeRange,
  groupBy: ReportGroup,
): Promise<ReportRow[]> {
  const group: Expression<string | null> =
    groupBy === "day" ? dayOf(database) : sql<string | null>`${sql.ref(groupBy)}`;
  const rows = await database.db
    .selectFrom("spend_logs")
    .select([
      sql<string | null>`${group}`.as("grp"),
      sql<number>`coalesce(sum(spend), 0)`.as("spend"),
      sql<number>`count(*)`.as("requests"),
      sql<number>`coalesce(sum(images), 0)`.as("images"),
    ])
    .where(sql<SqlBool>`start_time >= ${range.from} and start_time < ${range.to}`)
    .groupBy(sql`1`)
    .orderBy(sql`2`, "desc")
    .orderBy(sql`1`)
    .execute();
  return rows.map((r) => ({
    group: r.grp as string | null,
    spend: Number(r.spend),
    requests: Number(r.requests),
    images: Number(r.images),
  }));
}

/** The UTC day (YYYY-MM-DD) of a row's start time, in each dialect's words. */
function dayOf(database: Database): Expression<string | null> {
  return database.dialect === "sqlite"
    ? sql<string>`strftime('%Y-%m-%d', start_time / 1000, 'unixepoch')`
    : sql<string>`to_char(to_timestamp(start_time / 1000.0) at time zone 'UTC', 'YYYY-MM-DD')`;
}
