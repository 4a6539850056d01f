/**
 * The gateway's ledger with `database_url` on a real PostgreSQL: costs are journaled and
 * written later, yet every reservation counts them (a cost past its hold at once, a cost
 * below its hold as the hold until written); while the database is unreachable a
 * reservation throws LedgerUnavailable, or is granted unbacked with
 * allow_requests_on_db_unavailable, and what was journaled is written once it is back.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Hold, LedgerUnavailable, type Reservation } from "../../src/auth/ledger.ts";
import {
  JournaledLedger,
  type JournaledLedgerOptions,
  LEASE_IDLE_MS,
  LEASE_REQUESTS,
} from "../../src/db/journaled-ledger.ts";
import { openPostgres, type PostgresDatabase } from "../../src/db/postgres.ts";
import { PostgresLink } from "../../src/db/postgres-link.ts";
import { SpendJournal } from "../../src/db/spend-journal.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";

function held(r: Reservation): Hold {
  if (!r.ok) throw new Error(`refused: spent ${r.spent}, held ${r.held}`);
  return r.hold;
}

describe.skipIf(!postgresBin())("the journaled ledger", () => {
  let server: Postgres;
  let database: PostgresDatabase;
  const open: JournaledLedger[] = [];

  beforeAll(async () => {
    server = await startPostgres();
    database = await openPostgres(await server.createDatabase());
  }, 60_000);
  afterEach(async () => {
    for (const l of open.splice(0)) await l.close();
  });
  afterAll(async () => {
    await database?.close();
    await server?.close();
  });

  /** A ledger whose journal is written only when the test flushes it. */
  async function make(options: JournaledLedgerOptions = {}) {
    const link = new PostgresLink(database, { logger: silentLogger, probeEveryMs: 3_600_000 });
    await link.probe();
    const dir = mkdtempSync(join(tmpdir(), "imagegate-journal-"));
    const journal = new SpendJournal({ dir, database: database.where });
    const ledger = new JournaledLedger(database, link, journal, {
      flushIntervalMs: 3_600_000,
      ...options,
    });
    open.push(ledger);
    return { ledger, link, dir };
  }

  it("counts a cost past its hold before it is written", async () => {
    const { ledger } = await make();
    const h = held(await ledger.reserve("past", 0.05, 0.1));
    // A token-billed answer can cost more than its hold said.
    await ledger.settle(h, 0.08);
    expect(await ledger.spent("past")).toBeCloseTo(0.08, 10);
    expect((await ledger.reserve("past", 0.03, 0.1)).ok).toBe(false);
    await ledger.flush();
    expect((await ledger.reserve("past", 0.03, 0.1)).ok).toBe(false);
    held(await ledger.reserve("past", 0.02, 0.1));
  });

  it("counts a cost below its hold as the hold until it is written, then as the cost", async () => {
    const { ledger } = await make();
    const h = held(await ledger.reserve("below", 0.05, 0.1));
    await ledger.settle(h, 0.01);
    expect((await ledger.reserve("below", 0.06, 0.1)).ok).toBe(false);
    await ledger.flush();
    held(await ledger.reserve("below", 0.06, 0.1));
    expect(await ledger.spent("below")).toBeCloseTo(0.01, 10);
  });

  it("refuses reservations while the database is unreachable, and writes the journal once it is back", async () => {
    const { ledger, link, dir } = await make();
    const h = held(await ledger.reserve("down", 0.05, 1));
    expect(link.reportFailure(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(
      true,
    );
    expect(link.up).toBe(false);
    await expect(ledger.reserve("down", 0.05, 1)).rejects.toBeInstanceOf(LedgerUnavailable);
    await ledger.settle(h, 0.04);
    await ledger.add("down", 0.5);
    await ledger.flush();
    // Nothing written while down: on disk only.
    expect(readdirSync(dir)).toHaveLength(1);
    await link.probe();
    expect(link.up).toBe(true);
    await ledger.flush();
    expect(readdirSync(dir)).toEqual([]);
    expect(await ledger.spent("down")).toBeCloseTo(0.54, 10);
    // A query's failure that is not an outage changes nothing.
    expect(link.reportFailure(new Error("syntax error"))).toBe(false);
    expect(link.up).toBe(true);
  });

  it("writes a cost straight to the database when the journal cannot be written, and counts it lost when neither can", async () => {
    const link = new PostgresLink(database, { logger: silentLogger, probeEveryMs: 3_600_000 });
    await link.probe();
    const journal = new SpendJournal({
      dir: mkdtempSync(join(tmpdir(), "imagegate-journal-")),
      database: database.where,
    });
    // A full disk.
    journal.append = () => {
      throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    };
    const errors: string[] = [];
    const ledger = new JournaledLedger(database, link, journal, {
      flushIntervalMs: 3_600_000,
      onFlushError: (e) => errors.push(String(e)),
    });
    open.push(ledger);
    const h = held(await ledger.reserve("nodisk", 0.05, 1));
    await ledger.settle(h, 0.04);
    expect(await ledger.spent("nodisk")).toBeCloseTo(0.04, 10);
    // Its hold went with it.
    held(await ledger.reserve("nodisk", 0.96, 1));
    link.reportFailure(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    await ledger.add("nodisk", 0.5);
    expect(ledger.lostUsd).toBeCloseTo(0.5, 10);
    expect(errors.some((e) => e.includes("ENOSPC") || e.includes("no space"))).toBe(true);
    expect(errors.some((e) => e.includes("$0.500000 lost"))).toBe(true);
    await link.probe();
  });

  it("grants unbacked holds while down with allow_requests_on_db_unavailable, charging them after", async () => {
    const { ledger, link } = await make({ allowWhenUnavailable: true });
    link.reportFailure(Object.assign(new Error("gone"), { code: "57P01" }));
    const h = held(await ledger.reserve("allowed", 5, 1));
    expect(h.unbacked).toBe(true);
    await ledger.settle(h, 2);
    await link.probe();
    await ledger.flush();
    expect(await ledger.spent("allowed")).toBeCloseTo(2, 10);
    // Back up: the budget holds again (spent 2 of 1).
    expect((await ledger.reserve("allowed", 0.01, 1)).ok).toBe(false);
  });

  /** The key's holds in the database (leases and single holds), by size. */
  async function holdsOf(key: string): Promise<number[]> {
    const rows = await database.db
      .selectFrom("key_holds")
      .select("usd")
      .where("key_id", "=", key)
      .execute();
    return rows.map((r) => r.usd).sort((a, b) => a - b);
  }

  describe("budget leases", () => {
    it("holds most requests locally: one lease in the database for many requests", async () => {
      const { ledger } = await make();
      const hs: Hold[] = [];
      for (let i = 0; i < 10; i++) hs.push(held(await ledger.reserve("lease", 0.01, 100)));
      // One hold, sized for LEASE_REQUESTS requests, not ten.
      const holds = await holdsOf("lease");
      expect(holds).toHaveLength(1);
      expect(holds[0]).toBeCloseTo(LEASE_REQUESTS * 0.01, 10);
      for (const h of hs) expect(h.lease).toBe(hs[0]!.lease);
      for (const h of hs) await ledger.settle(h, 0.008);
      expect(await ledger.spent("lease")).toBeCloseTo(0.08, 10);
      await ledger.flush();
      // Written: the spend grew by what the lease's hold shrank by.
      expect(await ledger.spent("lease")).toBeCloseTo(0.08, 10);
      expect((await holdsOf("lease"))[0]).toBeCloseTo(LEASE_REQUESTS * 0.01 - 0.08, 10);
    });

    it("asks the database once for requests that arrive while a lease is on its way", async () => {
      const { ledger } = await make();
      const hs = await Promise.all(
        Array.from({ length: LEASE_REQUESTS }, () => ledger.reserve("burst", 0.01, 100)),
      );
      expect(hs.every((r) => r.ok)).toBe(true);
      expect(await holdsOf("burst")).toHaveLength(1);
      // The lease is used up: the next request takes a new one.
      held(await ledger.reserve("burst", 0.01, 100));
      expect(await holdsOf("burst")).toHaveLength(2);
    });

    it("gives an idle lease back, so that another replica can spend it", async () => {
      const { ledger } = await make();
      const { ledger: other } = await make();
      const h = held(await ledger.reserve("idle", 0.1, 1));
      // 1/8 of the budget is leased; the other replica cannot have 0.9 of it now.
      expect((await holdsOf("idle"))[0]).toBeCloseTo(0.125, 10);
      await ledger.settle(h, 0.05);
      expect((await other.reserve("idle", 0.9, 1)).ok).toBe(false);
      // Given back once idle LEASE_IDLE_MS (the sweep's turn may come late on a busy machine).
      const deadline = Date.now() + 10 * LEASE_IDLE_MS;
      do {
        await new Promise((r) => setTimeout(r, LEASE_IDLE_MS / 2));
        await ledger.flush();
      } while ((await holdsOf("idle")).length > 0 && Date.now() < deadline);
      expect(await holdsOf("idle")).toEqual([]);
      held(await other.reserve("idle", 0.95, 1));
    });

    it("charges the costs under a lease to the key's new token after a regeneration", async () => {
      const { ledger } = await make();
      const first = held(await ledger.reserve("old-token", 0.01, 100));
      const second = held(await ledger.reserve("old-token", 0.01, 100));
      await ledger.settle(first, 0.008);
      // What /key/regenerate does (keys.ts): write pending spend, then move spend and holds.
      await ledger.flush();
      await database.db
        .updateTable("key_spend")
        .set({ key_id: "new-token" })
        .where("key_id", "=", "old-token")
        .execute();
      await database.db
        .updateTable("key_holds")
        .set({ key_id: "new-token" })
        .where("key_id", "=", "old-token")
        .execute();
      // Still journaled under the old token, which is what the request knew.
      await ledger.settle(second, 0.005);
      await ledger.flush();
      expect(await ledger.spent("new-token")).toBeCloseTo(0.013, 10);
      expect(await ledger.spent("old-token")).toBe(0);
      expect((await holdsOf("new-token"))[0]).toBeCloseTo(LEASE_REQUESTS * 0.01 - 0.013, 10);
    });

    it("lets the lease of a replica that died expire, like any hold", async () => {
      const { ledger: dying } = await make({ holdTtlMs: 300 });
      // Its request never ends: the replica is gone.
      held(await dying.reserve("crash", 0.1, 1));
      const { ledger: other } = await make();
      expect((await other.reserve("crash", 0.9, 1)).ok).toBe(false);
      await new Promise((r) => setTimeout(r, 400));
      held(await other.reserve("crash", 0.9, 1));
    });

    it("takes a new lease for another max_budget", async () => {
      const { ledger } = await make();
      const a = held(await ledger.reserve("limit", 0.01, 100));
      const b = held(await ledger.reserve("limit", 0.01, 50));
      expect(b.lease).not.toBe(a.lease);
      await ledger.release(a);
      await ledger.release(b);
    });

    it("keeps a budget exact when two replicas race 200 requests for it", async () => {
      const { ledger: one } = await make();
      const { ledger: two } = await make();
      const limit = 1;
      const hold = 0.03;
      // Each answered request costs at most what it held.
      const results = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const ledger = i % 2 === 0 ? one : two;
          const r = await ledger.reserve("race", hold, limit);
          if (!r.ok) return 0;
          await new Promise((res) => setTimeout(res, i % 7));
          if (i % 5 === 0) {
            await ledger.release(r.hold);
            return 0;
          }
          const cost = hold * (0.5 + (i % 3) / 4);
          await ledger.settle(r.hold, cost);
          return cost;
        }),
      );
      const charged = results.reduce((a, b) => a + b, 0);
      await one.close();
      await two.close();
      open.splice(0);
      const { ledger: fresh } = await make();
      const spent = await fresh.spent("race");
      expect(spent).toBeCloseTo(charged, 10);
      expect(spent).toBeLessThanOrEqual(limit + 1e-9);
      // Nothing is stranded in leases: a new replica can hold all that is left, and no more.
      expect((await fresh.reserve("race", limit - spent + 0.001, limit)).ok).toBe(false);
      await fresh.release(held(await fresh.reserve("race", limit - spent, limit)));
      await fresh.close();
      open.splice(0);
      // Every lease ended with its replica (the fresh one's too).
      expect(await holdsOf("race")).toEqual([]);
    });
  });
});
