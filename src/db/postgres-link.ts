/**
 * The link to the shared Postgres (contract: "Replicas share state (Redis) and one database
 * (Postgres)", faults), the database's counterpart of shared/redis-link.ts.
 *
 * Invariants:
 * - `up` is true only after the schema is migrated and while the database answers. Callers
 *   look at it before sending anything on the request path: while it is false a budgeted
 *   key's request is refused at once (503 `budget_unavailable`) instead of waiting for a
 *   connection timeout, and spend goes to the local journal only (spend-journal.ts).
 * - The gateway may start with Postgres down: `start()` tries the migrations once and, if
 *   the server cannot be reached, keeps trying in the background; the first success runs
 *   the migrations and then the `onUp` callbacks (journal replay, key reload).
 * - One warning per outage and one line per recovery, however many probes fail between.
 * - While up, a probe (`SELECT 1`) every `probeEveryMs` notices an outage even without
 *   traffic; a query that fails for a connection reason (`reportFailure`) notices it at once.
 * - The URL's password never reaches a log line (`where` is redacted).
 */
import type { Logger } from "../log/logger.ts";
import { migratePostgres } from "./migrations.ts";
import type pg from "pg";
import type { PostgresDatabase } from "./postgres.ts";

export interface PostgresLinkOptions {
  logger: Logger;
  /** How often the database is probed (up: to notice an outage; down: to notice it is back). */
  probeEveryMs?: number;
}

const PROBE_EVERY_MS = 1000;

/**
 * How long a query on a request's path (a reservation) or the link's probe may wait for
 * its answer: a database that stops answering without closing its connections (a network
 * partition) is an outage after this long (postgres-link.ts), not a request hanging until
 * TCP gives up.
 */
export const QUERY_TIMEOUT_MS = 5000;
// (Here and not in postgres.ts, which loads pg: the embedded mode never does.)

export class PostgresLink {
  readonly #pg: PostgresDatabase;
  readonly #logger: Logger;
  readonly #probeEveryMs: number;
  #up = false;
  #migrated = false;
  #downReported = false;
  #closed = false;
  #probing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #onUp: (() => void | Promise<void>)[] = [];

  constructor(database: PostgresDatabase, options: PostgresLinkOptions) {
    this.#pg = database;
    this.#logger = options.logger;
    this.#probeEveryMs = options.probeEveryMs ?? PROBE_EVERY_MS;
  }

  /** Whether the database is migrated and answering. */
  get up(): boolean {
    return this.#up;
  }

  /** Called (in order) each time the database becomes reachable, the first time included. */
  onUp(fn: () => void | Promise<void>): void {
    this.#onUp.push(fn);
  }

  /** One attempt to reach and migrate the database now; then probes in the background. */
  async start(): Promise<void> {
    await this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#probeEveryMs).unref();
  }

  /**
   * A query failed: if for a connection reason, the database is down from now on (until a
   * probe reaches it again). Returns whether it was such a failure.
   */
  reportFailure(error: unknown): boolean {
    if (!isConnectionError(error)) return false;
    this.#down(error);
    return true;
  }

  /** Checks the database now (one probe at a time). */
  probe(): Promise<void> {
    this.#probing ??= this.#probeOnce().finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#probing;
  }

  async #probeOnce(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#migrated) {
        await migratePostgres(this.#pg.pool, this.#pg.db);
        this.#migrated = true;
      } else {
        await this.#pg.pool.query({
          text: "SELECT 1",
          query_timeout: QUERY_TIMEOUT_MS,
        } as pg.QueryConfig);
      }
    } catch (e) {
      // A failing migration that is not an outage (a bug, a permission) is still a database
      // the gateway cannot use: reported the same way, and retried.
      this.#down(e);
      return;
    }
    if (this.#up || this.#closed) return;
    if (this.#downReported) {
      this.#downReported = false;
      this.#logger.log(
        "info",
        `database: PostgreSQL at ${this.#pg.where} is reachable again; budgets are enforced and journaled spend is being written`,
      );
    }
    this.#up = true;
    for (const fn of this.#onUp) {
      try {
        await fn();
      } catch (e) {
        if (!this.reportFailure(e))
          this.#logger.log("error", "database: work after reconnecting failed", {
            error: String(e),
          });
      }
    }
  }

  #down(reason: unknown): void {
    this.#up = false;
    if (this.#closed || this.#downReported) return;
    this.#downReported = true;
    this.#logger.log(
      "warn",
      `database: PostgreSQL at ${this.#pg.where} is unreachable (${describeError(reason)}); requests of keys with a budget are refused (unless allow_requests_on_db_unavailable), spend is journaled locally, and it reconnects by itself`,
    );
  }
}

/** SQLSTATE classes and codes that mean "the server is not there (now)", not "the query is wrong". */
const CONNECTION_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** Whether a `pg` error means the database cannot be reached (rather than a query's fault). */
export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof err?.code === "string") {
    if (CONNECTION_CODES.has(err.code) || CONNECTION_SQLSTATES.has(err.code)) return true;
    if (err.code.startsWith("08")) return true;
  }
  // Node's AggregateError (every address of a host refused): look inside.
  if (Array.isArray(err?.errors) && err.errors.some(isConnectionError)) return true;
  const message = typeof err?.message === "string" ? err.message : "";
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable|connect ECONNREFUSED|Connection ended/i.test(
    message,
  );
}

function describeError(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err?.code === "string" && CONNECTION_CODES.has(err.code)) return err.code;
  return typeof err?.message === "string" && err.message !== ""
    ? err.message.split("\n")[0]!
    : typeof err?.code === "string"
      ? err.code
      : "error";
}
