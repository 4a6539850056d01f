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
 * Budget leases keep the database off the request path: a reservation takes its hold from
 * a lease this process holds for the key (one hold in the database, `imagegate_lease`,
 * sized for LEASE_REQUESTS requests like the one that asked, but at most 1/LEASE_SHARE of
 * what the key has left, never less than that request), so most requests hold locally and
 * only one in LEASE_REQUESTS waits for the database; requests arriving while a lease is on
 * its way wait for it rather than asking too. A request's cost is journaled under its lease:
 * when applied, the lease's hold shrinks by the cost the spend grows by, so the database's
 * spend + holds never count less than what this process may still spend. A lease stops
 * handing out when it has too little left, after LEASE_MAX_AGE_MS (it is re-sized to what is
 * left), or for another `max_budget`, and is given back when idle LEASE_IDLE_MS; its hold
 * ends with the last request taken from it (journaled after that request's cost, so in
 * order). So every cent spent was inside a hold granted against the key's limit: recorded
 * spend passes `max_budget` only by what an answer cost past its own hold, as before. Near
 * the limit a lease is one request's hold (1/LEASE_SHARE of what is left is less than
 * the request), i.e. the per-request hold this ledger always took. The price: a key's last
 * few cents may sit in another replica's lease for up to LEASE_IDLE_MS (that replica spends
 * them first), and a lease's unused part is held until the journal's next flush.
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
import { EPSILON } from "./sqlite-ledger.ts";
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

/** A lease is sized for this many requests like the one that asked for it… */
export const LEASE_REQUESTS = 32;
/** …but at most this share of what the key has left. */
export const LEASE_SHARE = 8;
/** A lease unused this long is given back. */
export const LEASE_IDLE_MS = 500;
/** A lease hands out nothing after this long (a new one is sized to what is left then). */
export const LEASE_MAX_AGE_MS = 2000;

/** Part of a key's budget this process holds in the database, handed out to requests locally. */
interface Lease {
  readonly id: string;
  readonly key: string;
  /** The `max_budget` it was granted under: another one takes a new lease. */
  readonly limit: number;
  readonly grantedAt: number;
  usedAt: number;
  /** Its hold in the database once this process's entries are applied: granted less the costs journaled under it. */
  row: number;
  /** Not yet handed to a request. */
  free: number;
  /** Requests holding part of it. */
  inFlight: number;
  /** Entries journaled under it (applied or not). */
  journaled: number;
}

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
  /** Key id → the lease that hands out its holds (a lease not here hands out nothing more). */
  readonly #open = new Map<string, Lease>();
  /** Every lease whose hold has not ended, by id. */
  readonly #leases = new Map<string, Lease>();
  /** Key id → a lease on its way (requests for the key wait for it). */
  readonly #acquiring = new Map<string, Promise<void>>();

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
      setInterval(() => this.#sweep(), LEASE_IDLE_MS / 2).unref(),
    ];
  }

  async reserve(key: string, usd: number, limit: number): Promise<Reservation> {
    if (!this.#link.up) return this.#unavailable(key, usd);
    for (;;) {
      const lease = this.#open.get(key);
      if (lease !== undefined) {
        const now = this.#now();
        if (
          lease.limit === limit &&
          now - lease.grantedAt < LEASE_MAX_AGE_MS &&
          lease.free + EPSILON >= usd
        ) {
          lease.free -= usd;
          lease.inFlight += 1;
          lease.usedAt = now;
          return { ok: true, hold: { id: lease.id, key, usd, lease: lease.id } };
        }
        await this.#close(lease);
        continue;
      }
      const pending = this.#acquiring.get(key);
      if (pending === undefined) break;
      await pending;
    }
    let done!: () => void;
    this.#acquiring.set(key, new Promise<void>((resolve) => (done = resolve)));
    try {
      return await this.#lease(key, usd, limit);
    } finally {
      this.#acquiring.delete(key);
      done();
    }
  }

  /** Asks the database for a lease for `key` and takes `usd` of it. */
  async #lease(key: string, usd: number, limit: number): Promise<Reservation> {
    // What the database does not count yet: costs past their holds (a cost below its hold
    // is counted as the hold until written, so the database never counts less than spent,
    // even between a batch's commit and this replica's learning of it).
    const u = this.#journal.unflushed(key);
    const id = randomUUID();
    let r: { granted: number; spent: number; held: number };
    try {
      r = await this.#inner.lease(
        key,
        id,
        usd,
        LEASE_REQUESTS * usd,
        LEASE_SHARE,
        limit - u.beyond,
      );
    } catch (e) {
      if (!this.#link.reportFailure(e)) throw e;
      return this.#unavailable(key, usd);
    }
    if (r.granted <= 0) {
      return { ok: false, spent: r.spent + u.spent, held: Math.max(0, r.held - u.holds) };
    }
    const now = this.#now();
    const free = r.granted - usd;
    const lease: Lease = {
      id,
      key,
      limit,
      grantedAt: now,
      usedAt: now,
      row: r.granted,
      free,
      inFlight: 1,
      journaled: 0,
    };
    this.#leases.set(id, lease);
    if (free > EPSILON) this.#open.set(key, lease);
    return { ok: true, hold: { id, key, usd, lease: id } };
  }

  async settle(hold: Hold, usd: number): Promise<void> {
    const cost = Math.max(usd, 0);
    const lease = hold.lease === undefined ? undefined : this.#leases.get(hold.lease);
    if (lease === undefined) {
      await (hold.unbacked
        ? this.#record({ key: hold.key, usd: cost })
        : this.#endHold(hold, cost));
      return;
    }
    lease.inFlight -= 1;
    lease.free += hold.usd - cost;
    // It cost more than it held: the lease has less than nothing left.
    if (lease.free < 0) this.#stop(lease);
    const row = lease.row;
    lease.row = Math.max(0, row - cost);
    if (!this.#isOpen(lease) && lease.inFlight === 0) {
      // The last request of a lease that hands out nothing more: its cost and the lease's end, one entry.
      this.#leases.delete(lease.id);
      await this.#endHold({ id: lease.id, key: hold.key, usd: row }, cost);
      return;
    }
    lease.journaled += 1;
    await this.#record({ key: hold.key, usd: cost, lease: { id: lease.id } });
  }

  async release(hold: Hold): Promise<void> {
    if (hold.unbacked) return;
    const lease = hold.lease === undefined ? undefined : this.#leases.get(hold.lease);
    if (lease === undefined) {
      await this.#releaseHold(hold);
      return;
    }
    lease.inFlight -= 1;
    lease.free += hold.usd;
    if (!this.#isOpen(lease) && lease.inFlight === 0) await this.#end(lease);
  }

  /** Drops a hold in the database at once, or through the journal while it is unreachable. */
  async #releaseHold(hold: Hold): Promise<void> {
    if (this.#link.up) {
      try {
        await this.#inner.release(hold);
        return;
      } catch (e) {
        if (!this.#link.reportFailure(e)) throw e;
      }
    }
    // Given back once the database is there again (else it would only expire).
    await this.#endHold(hold, 0);
  }

  /** Journals `cost` as spent and the end of `hold` (dropped in the same transaction). */
  #endHold(hold: Hold, cost: number): Promise<void> {
    return this.#record({ key: hold.key, usd: cost, hold: { id: hold.id, usd: hold.usd } });
  }

  /** Whether the lease still hands out holds. */
  #isOpen(lease: Lease): boolean {
    return this.#open.get(lease.key) === lease;
  }

  /** The lease hands out nothing more. */
  #stop(lease: Lease): void {
    if (this.#isOpen(lease)) this.#open.delete(lease.key);
  }

  /** Stops the lease, and ends it if no request holds part of it. */
  #close(lease: Lease): Promise<void> {
    this.#stop(lease);
    return lease.inFlight === 0 ? this.#end(lease) : Promise.resolve();
  }

  /**
   * Ends a lease no request holds part of: its hold is dropped, at once if no cost was
   * journaled under it, else through the journal after those costs (so the database never
   * drops the hold before it adds what was spent under it).
   */
  async #end(lease: Lease): Promise<void> {
    if (!this.#leases.delete(lease.id)) return;
    const hold: Hold = { id: lease.id, key: lease.key, usd: lease.row };
    if (lease.journaled === 0) await this.#releaseHold(hold);
    else await this.#endHold(hold, 0);
  }

  /** Gives back leases idle for LEASE_IDLE_MS, and stops those past LEASE_MAX_AGE_MS. */
  #sweep(): void {
    const now = this.#now();
    for (const lease of [...this.#open.values()]) {
      if (now - lease.usedAt >= LEASE_IDLE_MS || now - lease.grantedAt >= LEASE_MAX_AGE_MS) {
        this.#close(lease).catch((e) => this.#report(e));
      }
    }
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
    for (const lease of [...this.#open.values()]) await this.#close(lease);
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
    if (!this.#link.up && this.#journal.size > 0) {
      // Kept until the database is back: on disk, whatever happens to this machine.
      await this.#journal.sync().catch((e) => this.#report(e));
      return;
    }
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
