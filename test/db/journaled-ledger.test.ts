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
import { JournaledLedger } from "../../src/db/journaled-ledger.ts";
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
  async function make(allow = false) {
    const link = new PostgresLink(database, { logger: silentLogger, probeEveryMs: 3_600_000 });
    await link.probe();
    const dir = mkdtempSync(join(tmpdir(), "imagegate-journal-"));
    const journal = new SpendJournal({ dir, database: database.where });
    const ledger = new JournaledLedger(database, link, journal, {
      flushIntervalMs: 3_600_000,
      allowWhenUnavailable: allow,
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
    const { ledger, link } = await make(true);
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
});
