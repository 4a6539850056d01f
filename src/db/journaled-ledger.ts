/**
 * The `Ledger` of a gateway with `database_url`: holds in Postgres as they are taken
 * (postgres-ledger.ts, synchronous: a budget is decided on the database's sums), spend
 * through the local journal (spend-journal.ts) and into Postgres in batches off the request
 * path, every `flushIntervalMs`.
 *
 * Budgets stay exact: a settled request's hold stays in the database until its journal
 * entry is applied (in the same transaction that adds the cost), so every replica counts it
 * meanwhile; this replica's reservations also count what its unapplied entries cost beyond
 * their holds (`limit` lowered by it). A key's spend as this replica sees it is
 * settled + held + journaled-but-unapplied; until applied, a cost below its hold counts as
 * the hold (for at most a flush interval).
 *
 * While the database is unreachable (PostgresLink): a reservation throws LedgerUnavailable
 * (the 503 `budget_unavailable`), or, with `allow_requests_on_db_unavailable`, is granted
 * unbacked (nothing held, the budget unchecked); settled spend is journaled as always and
 * applied once the database is back, exactly once.
 */
import { randomUUID } from "node:crypto";
import { type Hold, type Ledger, LedgerUnavailable, type Reservation } from "../auth/ledger.ts";
import type { PostgresDatabase } from "./postgres.ts";
import { applyJournal, PostgresLedger, pruneJournalMarks } from "./postgres-ledger.ts";
import type { PostgresLink } from "./postgres-link.ts";
import type { JournalEntry, SpendJournal } from "./spend-journal.ts";
import type { SpendLogSink } from "./spend-log.ts";

export interface JournaledLedgerOptions {
  holdTtlMs?: number;
  /** `allow_requests_on_db_unavailable`: budgeted keys are served while the database is down. */
  allowWhenUnavailable?: boolean;
  /** How often journaled spend is written to the database. */
  flushIntervalMs?: number;
  /** How often segments of processes that are gone are looked for. */
  adoptEveryMs?: number;
  /** Told when writing journaled spend fails for another reason than an outage. */
  onFlushError?: (error: unknown) => void;
  now?: () => number;
}

/** Applied journal ids are kept this long (a journal replayed later than that could double count). */
const MARKS_KEPT_MS = 90 * 86_400_000;
const PRUNE_MARKS_EVERY_MS = 3_600_000;
const REPORT_EVERY_MS = 60_000;

export class JournaledLedger implements Ledger {
  readonly #pg: PostgresDatabase;
  readonly #link: PostgresLink;
  readonly #journal: SpendJournal;
  readonly #inner: PostgresLedger;
  readonly #allow: boolean;
  readonly #onFlushError: (error: unknown) => void;
  readonly #now: () => number;
  readonly #timers: NodeJS.Timeout[];
  #flushing: Promise<void> | undefined;
  #prunedAt = 0;
  /** When a failed write was last reported: a batch that keeps failing is retried every flush, reported once a minute. */
  #reportedAt = Number.NEGATIVE_INFINITY;
  #lostReportedAt = Number.NEGATIVE_INFINITY;

  constructor(
    database: PostgresDatabase,
    link: PostgresLink,
    journal: SpendJournal,
    options: JournaledLedgerOptions = {},
  ) {
    this.#pg = database;
    this.#link = link;
    this.#journal = journal;
    this.#now = options.now ?? Date.now;
    this.#inner = new PostgresLedger(database, { holdTtlMs: options.holdTtlMs, now: this.#now });
    this.#allow = options.allowWhenUnavailable ?? false;
    this.#onFlushError = options.onFlushError ?? (() => {});
    this.#timers = [
      setInterval(() => void this.flush(), options.flushIntervalMs ?? 200).unref(),
      setInterval(() => this.adopt(), options.adoptEveryMs ?? 60_000).unref(),
    ];
  }

  async reserve(key: string, usd: number, limit: number): Promise<Reservation> {
    if (!this.#link.up) return this.#unavailable(key, usd);
    // What the database does not count yet: costs past their holds (a cost below its hold
    // is counted as the hold until written, so the database never counts less than spent,
    // even between a batch's commit and this replica's learning of it).
    const u = this.#journal.unflushed(key);
    let r: Reservation;
    try {
      r = await this.#inner.reserve(key, usd, limit - u.beyond);
    } catch (e) {
      if (!this.#link.reportFailure(e)) throw e;
      return this.#unavailable(key, usd);
    }
    return r.ok ? r : { ok: false, spent: r.spent + u.spent, held: Math.max(0, r.held - u.holds) };
  }

  async settle(hold: Hold, usd: number): Promise<void> {
    await this.#record({
      key: hold.key,
      usd: Math.max(usd, 0),
      hold: hold.unbacked ? undefined : { id: hold.id, usd: hold.usd },
    });
  }

  async release(hold: Hold): Promise<void> {
    if (hold.unbacked) return;
    if (this.#link.up) {
      try {
        await this.#inner.release(hold);
        return;
      } catch (e) {
        if (!this.#link.reportFailure(e)) throw e;
      }
    }
    // Given back once the database is there again (else it would only expire).
    await this.#record({ key: hold.key, usd: 0, hold: { id: hold.id, usd: hold.usd } });
  }

  async add(key: string, usd: number): Promise<void> {
    if (usd > 0) await this.#record({ key, usd });
  }

  /** The spend log's sink (spend-log.ts): its rows through the journal, written with the spend. */
  readonly spendLog: SpendLogSink = {
    append: (row) => {
      void this.#record({ key: row.api_key ?? "", usd: 0, log: row });
    },
    flush: () => this.flush(),
  };

  /** USD of answered requests that could be neither journaled nor written (a full disk while the database was down). */
  lostUsd = 0;

  /**
   * Journals `spend`; if the journal cannot be written (a full or failing disk), writes it
   * to the database at once (the same statement, so still once); if that fails too, counts
   * and reports it. Never fails the request it belongs to, whose answer is ready.
   */
  async #record(spend: Omit<JournalEntry, "id" | "at">): Promise<void> {
    try {
      this.#journal.append(spend);
      return;
    } catch (e) {
      this.#report(e);
    }
    const entry: JournalEntry = { id: randomUUID(), ...spend, at: this.#now() };
    if (this.#link.up) {
      try {
        await applyJournal(this.#pg, [entry], this.#now());
        return;
      } catch (e) {
        if (!this.#link.reportFailure(e)) this.#report(e);
      }
    }
    this.lostUsd += spend.usd;
    // Its own pace (the journal's failure was just reported): at most one line a second.
    if (this.#now() - this.#lostReportedAt < 1000) return;
    this.#lostReportedAt = this.#now();
    this.#onFlushError(
      new Error(
        `spend could be neither journaled nor written: $${this.lostUsd.toFixed(6)} lost so far on this replica`,
      ),
    );
  }

  /** Recorded spend as this replica sees it: the database's and what its journal has not applied. */
  async spent(key: string): Promise<number> {
    return (await this.#inner.spent(key)) + this.#journal.unflushed(key).spent;
  }

  /** Writes journaled spend to the database, if it is up; one flush at a time. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Takes over the journals of processes that are gone (a crashed replica's). */
  adopt(): number {
    try {
      return this.#journal.adopt();
    } catch (e) {
      this.#onFlushError(e);
      return 0;
    }
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
    this.#journal.close();
    await this.#inner.close();
  }

  #report(e: unknown): void {
    const now = this.#now();
    if (now - this.#reportedAt < REPORT_EVERY_MS) return;
    this.#reportedAt = now;
    this.#onFlushError(e);
  }

  #unavailable(key: string, usd: number): Reservation {
    if (!this.#allow) throw new LedgerUnavailable();
    return { ok: true, hold: { id: randomUUID(), key, usd, unbacked: true } };
  }

  async #flushAll(): Promise<void> {
    while (this.#link.up && this.#journal.size > 0) {
      let batch: Awaited<ReturnType<SpendJournal["take"]>>;
      try {
        batch = await this.#journal.take();
      } catch (e) {
        this.#report(e);
        return;
      }
      if (batch.length === 0) return;
      try {
        await applyJournal(this.#pg, batch, this.#now());
        this.#journal.applied(batch);
      } catch (e) {
        this.#journal.giveBack(batch);
        if (!this.#link.reportFailure(e)) this.#report(e);
        return;
      }
    }
    if (this.#link.up && this.#now() - this.#prunedAt > PRUNE_MARKS_EVERY_MS) {
      this.#prunedAt = this.#now();
      await pruneJournalMarks(this.#pg, this.#now() - MARKS_KEPT_MS).catch(() => {});
    }
  }
}
