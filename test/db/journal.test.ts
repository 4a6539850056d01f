/**
 * The spend journal on its own (segments on disk, what a crash leaves, adoption) and, on a
 * real PostgreSQL, applying it: a replayed entry counts once, its hold is dropped in the
 * same transaction.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgres, type PostgresDatabase } from "../../src/db/postgres.ts";
import { applyJournal, PostgresLedger } from "../../src/db/postgres-ledger.ts";
import { spendLogs } from "../../src/db/spend-log.ts";
import { type JournalEntry, SpendJournal } from "../../src/db/spend-journal.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";

const DB = "postgresql://x@127.0.0.1:5432/spend";
const dir = () => mkdtempSync(join(tmpdir(), "imagegate-journal-"));

/** A pid no process has now (one that just exited). */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", ""]).pid!;
}

/** A segment as a process that died would have left it. */
function orphanSegment(path: string, entries: object[], database = DB, torn = ""): void {
  writeFileSync(
    path,
    [
      JSON.stringify({ imagegate_spend_journal: 1, database }),
      ...entries.map((e) => JSON.stringify(e)),
    ]
      .map((l) => `${l}\n`)
      .join("") + torn,
  );
}

const entry = (id: string, usd: number, hold?: { id: string; usd: number }): JournalEntry => ({
  id,
  key: "k",
  usd,
  hold,
  at: 1,
});

describe("the spend journal", () => {
  it("keeps each entry on disk until applied, then deletes its segment", async () => {
    const d = dir();
    const j = new SpendJournal({ dir: d, database: DB });
    j.append({ key: "k", usd: 0.04, hold: { id: "h1", usd: 0.05 } });
    j.append({ key: "k", usd: 0.02 });
    expect(j.unflushed("k").spent).toBeCloseTo(0.06, 10);
    expect(j.unflushed("k").holds).toBeCloseTo(0.05, 10);
    // Only the entry without a hold costs more than the database counts.
    expect(j.unflushed("k").beyond).toBeCloseTo(0.02, 10);
    const [file] = readdirSync(d);
    expect(file).toMatch(new RegExp(`^spend-${process.pid}-[0-9a-f]+-1\\.jsonl$`));
    const lines = readFileSync(join(d, file!), "utf8").trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[1]!)).toMatchObject({ key: "k", usd: 0.04, hold: { id: "h1" } });

    const batch = await j.take();
    expect(batch.map((e) => e.usd)).toEqual([0.04, 0.02]);
    // Appended after the take: a new segment; the taken one still counts until applied.
    j.append({ key: "k", usd: 0.01 });
    expect(readdirSync(d)).toHaveLength(2);
    expect(j.unflushed("k").spent).toBeCloseTo(0.07, 10);
    j.applied(batch);
    expect(readdirSync(d)).toHaveLength(1);
    expect(j.unflushed("k").spent).toBeCloseTo(0.01, 10);
    const rest = await j.take();
    j.giveBack(rest);
    expect(j.size).toBe(1);
    j.applied(await j.take());
    expect(j.unflushed("k")).toEqual({ spent: 0, holds: 0, beyond: 0 });
    j.close();
    expect(readdirSync(d)).toEqual([]);
  });

  it("starts a new segment every few entries and hands them out whole, read back from disk", async () => {
    const d = dir();
    const j = new SpendJournal({ dir: d, database: DB, segmentEntries: 2 });
    for (let i = 1; i <= 5; i++) j.append({ key: "k", usd: i });
    expect(readdirSync(d)).toHaveLength(3);
    expect(j.unflushed("k").spent).toBe(15);
    // Whole segments up to 3 entries: the first alone (a second would make 4).
    const first = await j.take(3);
    expect(first.map((e) => e.usd)).toEqual([1, 2]);
    j.applied(first);
    expect(readdirSync(d)).toHaveLength(2);
    const rest = await j.take();
    expect(rest.map((e) => e.usd)).toEqual([3, 4, 5]);
    j.applied(rest);
    expect(readdirSync(d)).toEqual([]);
    expect(j.size).toBe(0);
    j.close();
  });

  it("adopts a dead process's segment, ignoring a torn last line, once", () => {
    const d = dir();
    const path = join(d, `spend-${deadPid()}-abcd1234-1.jsonl`);
    orphanSegment(
      path,
      [entry("e1", 0.04), entry("e2", 0.016, { id: "h", usd: 0.02 })],
      DB,
      '{"id":"e3","ke',
    );
    const j = new SpendJournal({ dir: d, database: DB });
    expect(j.adopt()).toBe(2);
    expect(j.skippedLines).toBe(1);
    expect(j.unflushed("k").spent).toBeCloseTo(0.056, 10);
    // Found again on the next scan: not taken twice.
    expect(j.adopt()).toBe(0);
    expect(j.size).toBe(2);
    j.close();
  });

  it("leaves live processes' segments and other databases' alone", () => {
    const d = dir();
    const other = new SpendJournal({ dir: d, database: DB });
    other.append({ key: "k", usd: 1 });
    orphanSegment(
      join(d, `spend-${deadPid()}-abcd1234-1.jsonl`),
      [entry("x", 2)],
      "postgresql://elsewhere/db",
    );
    // The pid of a process that runs (this test's parent).
    orphanSegment(join(d, `spend-${process.ppid}-abcd1234-1.jsonl`), [entry("y", 3)]);
    const j = new SpendJournal({ dir: d, database: DB });
    expect(j.adopt()).toBe(0);
    expect(readdirSync(d)).toHaveLength(3);
    other.close();
    j.close();
  });

  it("hands a closed journal's entries to the next start in the same process", async () => {
    const d = dir();
    const first = new SpendJournal({ dir: d, database: DB });
    first.append({ key: "k", usd: 0.5 });
    first.close();
    const second = new SpendJournal({ dir: d, database: DB });
    expect(second.adopt()).toBe(1);
    const batch = await second.take();
    second.applied(batch);
    expect(readdirSync(d)).toEqual([]);
    second.close();
  });

  it("keeps entries taken without an fsync and given back: synced for an outage, replayed by the next start", async () => {
    const d = dir();
    const first = new SpendJournal({ dir: d, database: DB });
    first.append({ key: "k", usd: 0.25 });
    first.append({ key: "k", usd: 0.5, lease: { id: "lease-1" } });
    // On its way without an fsync (the database's commit would make it durable)…
    const batch = await first.take();
    expect(batch.map((e) => e.usd)).toEqual([0.25, 0.5]);
    // …but refused: first in line again, made durable while the database is away.
    first.giveBack(batch);
    first.append({ key: "k", usd: 1 });
    await first.sync();
    // An entry under a lease is covered by the lease's hold until applied.
    expect(first.unflushed("k")).toEqual({ spent: 1.75, holds: 0.5, beyond: 1.25 });
    first.close();
    const second = new SpendJournal({ dir: d, database: DB });
    expect(second.adopt()).toBe(3);
    const replayed = await second.take();
    expect(replayed.map((e) => [e.usd, e.lease?.id])).toEqual([
      [0.25, undefined],
      [0.5, "lease-1"],
      [1, undefined],
    ]);
    second.applied(replayed);
    expect(readdirSync(d)).toEqual([]);
    second.close();
  });
});

describe.skipIf(!postgresBin())("applying the journal to PostgreSQL", () => {
  let server: Postgres;
  let database: PostgresDatabase;
  beforeAll(async () => {
    server = await startPostgres();
    database = await openPostgres(await server.createDatabase());
  }, 60_000);
  afterAll(async () => {
    await database?.close();
    await server?.close();
  });

  it("counts an entry once however often it is replayed, and drops its hold with it", async () => {
    const ledger = new PostgresLedger(database);
    const r = await ledger.reserve("k", 0.05, 0.1);
    if (!r.ok) throw new Error("refused");
    const entries = [
      entry("a", 0.04, { id: r.hold.id, usd: 0.05 }),
      entry("b", 0.01),
      entry("b", 0.01),
    ];
    expect(await applyJournal(database, entries)).toBe(2);
    expect(await ledger.spent("k")).toBeCloseTo(0.05, 10);
    // The hold went with its entry: the whole budget minus spend is free again.
    expect((await ledger.reserve("k", 0.05, 0.1)).ok).toBe(true);
    // A replay (a crash between applying and deleting the segment): nothing more.
    expect(await applyJournal(database, entries)).toBe(0);
    expect(await applyJournal(database, [entries[0]!, entry("c", 0.001)])).toBe(1);
    expect(await ledger.spent("k")).toBeCloseTo(0.051, 10);
    await ledger.close();
  });

  it("lowers a lease's hold by each cost under it and ends it with its last entry, once", async () => {
    const ledger = new PostgresLedger(database);
    const limit = 1;
    const lease = await ledger.lease("kl", "lease-a", 0.1, 0.8, 8, limit);
    // 1/8 of what the key has left (0.125) is less than the 0.8 asked for.
    expect(lease.granted).toBeCloseTo(0.125, 10);
    const holds = async () =>
      (
        await database.db.selectFrom("key_holds").select("usd").where("key_id", "=", "kl").execute()
      ).map((r) => r.usd);
    const under = (id: string, usd: number): JournalEntry => ({
      ...entry(id, usd),
      key: "kl",
      lease: { id: "lease-a" },
    });
    expect(await applyJournal(database, [under("l1", 0.03), under("l2", 0.02)])).toBe(2);
    expect(await ledger.spent("kl")).toBeCloseTo(0.05, 10);
    // Spend + holds unchanged: the costs moved from the lease's hold to the spend.
    expect((await holds())[0]).toBeCloseTo(0.075, 10);
    expect(await applyJournal(database, [under("l1", 0.03)])).toBe(0);
    expect((await holds())[0]).toBeCloseTo(0.075, 10);
    // A cost under the lease and the lease's end in one batch: the hold goes, the cost stays.
    const end = { ...entry("l4", 0, { id: "lease-a", usd: 0.065 }), key: "kl" };
    expect(await applyJournal(database, [under("l3", 0.01), end])).toBe(2);
    expect(await holds()).toEqual([]);
    expect(await ledger.spent("kl")).toBeCloseTo(0.06, 10);
    // Near the limit a lease is the one request's hold.
    const last = await ledger.lease("kl", "lease-b", 0.9, 7.2, 8, limit);
    expect(last.granted).toBeCloseTo(0.9, 10);
    expect((await ledger.lease("kl", "lease-c", 0.05, 0.4, 8, limit)).granted).toBe(0);
    await ledger.close();
  });

  it("inserts an entry's spend-log row once, touching no key's spend", async () => {
    const row = {
      id: "row-1",
      request_id: "req_1",
      api_key: "k3",
      key_alias: "team",
      end_user: null,
      model: "cheap",
      model_id: "cheap-1",
      provider: "openai",
      status: "success",
      spend: 0.016,
      images: 1,
      size: "256x256",
      quality: null,
      start_time: 1000,
      end_time: 1100,
      attempts: 1,
      attempt_log: null,
    };
    const logged = { ...entry("log-1", 0), key: "k3", log: row };
    expect(await applyJournal(database, [logged])).toBe(1);
    expect(await applyJournal(database, [logged])).toBe(0);
    const rows = await spendLogs(database, { from: 0, to: 10_000 });
    expect(rows).toEqual([
      expect.objectContaining({
        request_id: "req_1",
        api_key: "k3",
        spend: 0.016,
        status: "success",
      }),
    ]);
    const keys = await database.db
      .selectFrom("key_spend")
      .select("key_id")
      .where("key_id", "=", "k3")
      .execute();
    expect(keys).toEqual([]);
  });

  it("replays a dead replica's segment into the database exactly once", async () => {
    const d = dir();
    const path = join(d, `spend-${deadPid()}-abcd1234-1.jsonl`);
    const k2 = (id: string, usd: number) => ({ ...entry(id, usd), key: "k2" });
    orphanSegment(path, [k2("r1", 0.25), k2("r2", 0.5)]);
    for (let run = 0; run < 2; run++) {
      // The second run: the segment came back, as if a crash had stopped its deletion.
      if (run === 1) orphanSegment(path, [k2("r1", 0.25), k2("r2", 0.5)]);
      const j = new SpendJournal({ dir: d, database: DB });
      j.adopt();
      const batch = await j.take();
      await applyJournal(database, batch);
      j.applied(batch);
      j.close();
      expect(readdirSync(d)).toEqual([]);
    }
    const ledger = new PostgresLedger(database);
    expect(await ledger.spent("k2")).toBeCloseTo(0.75, 10);
    await ledger.close();
  });
});
