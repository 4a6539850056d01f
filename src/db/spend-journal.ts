/**
 * The spend journal: what answered requests cost, kept on local disk until the shared
 * database has it (contract: "Replicas share state…", faults: nothing lost, nothing
 * counted twice). Used with `database_url`; the embedded SQLite file is local already.
 *
 * Invariants:
 * - An entry is appended (a synchronous `write`, so it is in the OS's hands before the
 *   answer goes out and survives the process being killed) before anything is sent to the
 *   database. While the database takes the entries, its commit is what makes them durable
 *   (`take` fsyncs nothing: an fsync per flush would cost every request latency on disks
 *   that stall on it); while it is unreachable, `sync` fsyncs what was appended since the
 *   last flush. Either way only a power loss within a flush interval can lose an entry.
 * - Entries live in segments, `spend-<pid>-<instance>-<seq>.jsonl`, one line each after a
 *   header naming the database, at most 2,000 to a segment. `take` closes the open segment,
 *   so a segment never gains entries once some of them are on their way, and hands out whole
 *   segments read back from disk; a segment is deleted once every entry in it is applied. A
 *   line cut short by a crash (the last one) is ignored.
 * - Memory holds per-key sums and the batch on its way, not the entries: a long outage's
 *   journal grows on disk only, and is written back a batch at a time.
 * - Every entry has an id; the database records applied ids in the same transaction as
 *   the spend (postgres-ledger.ts `applyJournal`), so replaying a segment whose deletion a
 *   crash prevented counts nothing twice.
 * - Segments of processes that are gone (a pid that no longer runs, or this pid from
 *   another start) are adopted (`adopt`, at start and now and then): their entries are
 *   replayed like our own. Several replicas sharing one directory may adopt the same
 *   segment; the applied ids make that harmless. A segment for another database is left.
 *
 * Why not fsync per entry: an fsync costs a millisecond or more on most disks, on every
 * request; the append alone is microseconds, and a process crash loses nothing written.
 * Only a power loss within a flush interval (200 ms) can lose the last entries' spend.
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  closeSync,
  fsync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { SpendLogsTable } from "./schema.ts";

const fsyncAsync = promisify(fsync);

export interface JournalEntry {
  id: string;
  /** The key's id (SHA-256). */
  key: string;
  /** What the request cost (0 for a hold given back with nothing spent). */
  usd: number;
  /** The hold this entry ends (dropped in the same transaction), and what it held. */
  hold?: { id: string; usd: number };
  /**
   * The budget lease this request's cost was held under (journaled-ledger.ts): the lease's
   * hold is lowered by `usd` in the same transaction that adds `usd` to the spend, so the
   * database's spend + holds stay what they were.
   */
  lease?: { id: string };
  /** A spend-log row to insert with it (the request's; its own `usd` is then 0). */
  log?: SpendLogsTable;
  /** Epoch ms. */
  at: number;
}

export interface SpendJournalOptions {
  dir: string;
  /** Names the database the entries belong to (the redacted URL); other databases' segments are left alone. */
  database: string;
  now?: () => number;
}

interface Segment {
  path: string;
  /** Open while entries may still be written to it, or until `take` closes it. */
  fd: number | undefined;
  /** Entries in it not yet applied. */
  unapplied: number;
  /** Its entries while they are on their way to the database (else they are on disk only). */
  entries: JournalEntry[] | undefined;
  /** Everything written to it is fsync'd (and its directory entry). */
  synced: boolean;
}

/** What a key's unapplied entries add to the database's figures. */
export interface Unflushed {
  /** Spend not yet in the database. */
  spent: number;
  /** Of the holds the database still counts, how much these entries end. */
  holds: number;
  /** What these entries cost beyond their holds (each entry's cost past its hold, if any). */
  beyond: number;
}

const HEADER_VERSION = 1;
const NAME = /^spend-(\d+)-([0-9a-f]+)-(\d+)\.jsonl$/;
/** Entries per segment at most: a long outage makes many segments, each read back alone. */
const SEGMENT_ENTRIES = 2000;
/** Instances of the journal in this process (tests run several gateways in one). */
const LIVE_INSTANCES = new Set<string>();

export class SpendJournal {
  readonly dir: string;
  readonly #database: string;
  readonly #now: () => number;
  readonly #segmentEntries: number;
  readonly #instance = randomBytes(4).toString("hex");
  #seq = 0;
  /** The segment appended to. */
  #current: Segment | undefined;
  /** Segments with entries not yet taken, oldest first (the current one last, if it has any). */
  #queue: Segment[] = [];
  /** The taken batch: its entries by id, and their segments. */
  #inFlight = new Map<string, Segment>();
  #unapplied = 0;
  readonly #byKey = new Map<string, Unflushed & { entries: number }>();
  readonly #adopted = new Set<string>();
  /** Lines of adopted segments that could not be read (a torn last line). */
  skippedLines = 0;
  #closed = false;

  constructor(options: SpendJournalOptions & { segmentEntries?: number }) {
    this.dir = options.dir;
    this.#database = options.database;
    this.#now = options.now ?? Date.now;
    this.#segmentEntries = options.segmentEntries ?? SEGMENT_ENTRIES;
    mkdirSync(this.dir, { recursive: true });
    LIVE_INSTANCES.add(this.#instance);
  }

  /** Entries not yet applied (on disk, or on their way to the database). */
  get size(): number {
    return this.#unapplied;
  }

  /** Journals one request's spend; synchronous, before the answer goes out. */
  append(spend: Omit<JournalEntry, "id" | "at">): JournalEntry {
    if (this.#closed) throw new Error("the spend journal is closed");
    const entry: JournalEntry = { id: randomUUID(), ...spend, at: this.#now() };
    const segment = this.#openSegment();
    writeSync(segment.fd!, `${JSON.stringify(entry)}\n`);
    segment.synced = false;
    segment.unapplied += 1;
    this.#unapplied += 1;
    this.#track(entry, 1);
    // Full: the next entry starts a new segment (this one is closed by `take`).
    if (segment.unapplied >= this.#segmentEntries) this.#current = undefined;
    return entry;
  }

  /** What `key`'s unapplied entries add to the database's figures. */
  unflushed(key: string): Unflushed {
    const u = this.#byKey.get(key);
    return u === undefined
      ? { spent: 0, holds: 0, beyond: 0 }
      : { spent: u.spent, holds: u.holds, beyond: u.beyond };
  }

  /**
   * The next entries to apply (whole segments, up to `max` entries but at least one
   * segment), read back from disk after their segments are closed; one batch at a time.
   * Nothing is fsync'd here: the database's commit makes applied entries durable, and
   * `sync` covers those that wait for it. Until `applied` or `giveBack` they still count in
   * `unflushed`.
   */
  async take(max = 5000): Promise<JournalEntry[]> {
    if (this.#inFlight.size > 0) throw new Error("a batch is already on its way");
    // The current segment is closed before anything in it is sent: it gains nothing more.
    if (this.#current !== undefined && this.#current.unapplied > 0) this.#current = undefined;
    const batch: Segment[] = [];
    let count = 0;
    for (const segment of this.#queue) {
      if (segment === this.#current) break;
      if (batch.length > 0 && count + segment.unapplied > max) break;
      batch.push(segment);
      count += segment.unapplied;
    }
    if (batch.length === 0) return [];
    this.#queue.splice(0, batch.length);
    try {
      for (const segment of batch) {
        if (segment.fd === undefined) continue;
        closeSync(segment.fd);
        segment.fd = undefined;
      }
      for (const segment of batch) {
        if (segment.entries !== undefined) continue;
        const entries = this.#read(segment.path) ?? [];
        // What the file holds is what counts (it is what a restart would replay).
        this.#unapplied += entries.length - segment.unapplied;
        segment.unapplied = entries.length;
        segment.entries = entries;
        if (entries.length === 0) remove(segment.path);
      }
    } catch (e) {
      this.#queue.unshift(...batch);
      throw e;
    }
    const entries: JournalEntry[] = [];
    for (const segment of batch) {
      for (const entry of segment.entries!) {
        this.#inFlight.set(entry.id, segment);
        entries.push(entry);
      }
    }
    return entries;
  }

  /**
   * Makes every entry not yet applied durable: fsyncs the segments written since their last
   * fsync (open or closed) and the directory. For while the database cannot take them.
   */
  async sync(): Promise<void> {
    let any = false;
    for (const segment of this.#queue) {
      if (segment.synced) continue;
      if (segment.fd !== undefined) await fsyncAsync(segment.fd);
      else await syncPath(segment.path);
      segment.synced = true;
      any = true;
    }
    if (any) await syncDir(this.dir);
  }

  /** The database has these entries: forgotten, and segments with nothing left deleted. */
  applied(entries: readonly JournalEntry[]): void {
    for (const entry of entries) {
      const segment = this.#inFlight.get(entry.id);
      if (segment === undefined) continue;
      this.#inFlight.delete(entry.id);
      this.#track(entry, -1);
      this.#unapplied -= 1;
      segment.unapplied -= 1;
      if (segment.unapplied === 0) {
        segment.entries = undefined;
        remove(segment.path);
      }
    }
  }

  /** The database refused them: first in line again (kept in memory for the retry). */
  giveBack(entries: readonly JournalEntry[]): void {
    const back: Segment[] = [];
    for (const entry of entries) {
      const segment = this.#inFlight.get(entry.id);
      if (segment === undefined) continue;
      this.#inFlight.delete(entry.id);
      if (!back.includes(segment)) back.push(segment);
    }
    this.#queue.unshift(...back);
  }

  /** Takes over segments of processes that are gone; returns how many entries they held. */
  adopt(): number {
    let found = 0;
    for (const name of readdirSync(this.dir)) {
      const m = NAME.exec(name);
      if (m === null) continue;
      const path = join(this.dir, name);
      if (this.#adopted.has(path) || !orphaned(Number(m[1]), m[2]!)) continue;
      const entries = this.#read(path);
      if (entries === undefined) continue;
      this.#adopted.add(path);
      if (entries.length === 0) {
        remove(path);
        continue;
      }
      // Counted now, read again when taken: a long outage's journal is not held in memory.
      for (const entry of entries) this.#track(entry, 1);
      this.#unapplied += entries.length;
      this.#queue.push({
        path,
        fd: undefined,
        unapplied: entries.length,
        entries: undefined,
        synced: true,
      });
      found += entries.length;
    }
    return found;
  }

  /** Stops appending; what is not applied stays on disk for the next start to replay. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    LIVE_INSTANCES.delete(this.#instance);
    this.#current = undefined;
    for (const segment of this.#queue) {
      if (segment.synced && segment.fd === undefined) continue;
      const fd = segment.fd ?? openSync(segment.path, "r");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      segment.fd = undefined;
      segment.synced = true;
    }
  }

  #openSegment(): Segment {
    if (this.#current !== undefined) return this.#current;
    const path = join(this.dir, `spend-${process.pid}-${this.#instance}-${++this.#seq}.jsonl`);
    const fd = openSync(path, "a", 0o600);
    writeSync(
      fd,
      `${JSON.stringify({ imagegate_spend_journal: HEADER_VERSION, database: this.#database })}\n`,
    );
    this.#current = { path, fd, unapplied: 0, entries: undefined, synced: false };
    this.#queue.push(this.#current);
    return this.#current;
  }

  #track(entry: JournalEntry, sign: 1 | -1): void {
    const key = entry.key;
    const u = this.#byKey.get(key) ?? { spent: 0, holds: 0, beyond: 0, entries: 0 };
    u.entries += sign;
    if (u.entries === 0) {
      // Exactly zero again, not a float's residue.
      this.#byKey.delete(key);
      return;
    }
    // What the database holds for this entry until it is applied: its hold, or its cost
    // inside its lease's hold.
    const covered = entry.hold?.usd ?? (entry.lease === undefined ? 0 : entry.usd);
    u.spent += sign * entry.usd;
    u.holds += sign * covered;
    u.beyond += sign * Math.max(0, entry.usd - covered);
    this.#byKey.set(key, u);
  }

  /**
   * A segment's entries (each id once); undefined if it belongs to another database or is
   * not a journal.
   */
  #read(path: string): JournalEntry[] | undefined {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
    const lines = text.split("\n");
    // The last piece is "" after a complete line, or a line a crash cut short.
    const torn = lines.pop();
    if (torn !== undefined && torn !== "") this.skippedLines += 1;
    const header = parse(lines.shift());
    if (
      header === undefined ||
      header.imagegate_spend_journal !== HEADER_VERSION ||
      header.database !== this.#database
    )
      return undefined;
    const entries: JournalEntry[] = [];
    const seen = new Set<string>();
    for (const line of lines) {
      const entry = parseEntry(line);
      if (entry === undefined) this.skippedLines += 1;
      else if (!seen.has(entry.id)) {
        seen.add(entry.id);
        entries.push(entry);
      }
    }
    return entries;
  }
}

/** Whether a segment's writer is gone: its pid runs no more, or it is this pid from an earlier start. */
function orphaned(pid: number, instance: string): boolean {
  if (pid === process.pid) return !LIVE_INSTANCES.has(instance);
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    // EPERM: it runs, as someone else.
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function parse(line: string | undefined): Record<string, unknown> | undefined {
  if (line === undefined || line === "") return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseEntry(line: string): JournalEntry | undefined {
  const v = parse(line);
  if (
    v === undefined ||
    typeof v.id !== "string" ||
    typeof v.key !== "string" ||
    typeof v.usd !== "number" ||
    !Number.isFinite(v.usd) ||
    typeof v.at !== "number"
  )
    return undefined;
  const hold = v.hold as { id?: unknown; usd?: unknown } | undefined;
  if (hold !== undefined && (typeof hold.id !== "string" || typeof hold.usd !== "number"))
    return undefined;
  const lease = v.lease as { id?: unknown } | undefined;
  if (lease !== undefined && typeof lease.id !== "string") return undefined;
  const log = v.log as Partial<SpendLogsTable> | undefined;
  if (
    log !== undefined &&
    (typeof log !== "object" ||
      log === null ||
      typeof log.id !== "string" ||
      typeof log.status !== "string" ||
      typeof log.start_time !== "number")
  )
    return undefined;
  return {
    id: v.id,
    key: v.key,
    usd: v.usd,
    hold: hold === undefined ? undefined : { id: hold.id as string, usd: hold.usd as number },
    lease: lease === undefined ? undefined : { id: lease.id as string },
    log: log as SpendLogsTable | undefined,
    at: v.at,
  };
}

function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/** A closed segment's contents, on disk. */
async function syncPath(path: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A new segment's directory entry, on disk too. */
async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, "r");
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}
