/**
 * The SQLite ledger on its own: holds count against the budget until settled or released,
 * processes sharing one file see each other's holds, and a hold whose process died expires.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Hold, Reservation } from "../../src/auth/ledger.ts";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";

const open: SqliteLedger[] = [];
afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
});

function ledger(path: string, now?: () => number): SqliteLedger {
  const l = new SqliteLedger(path, { holdTtlMs: 1000, now });
  open.push(l);
  return l;
}

function held(r: Reservation): Hold {
  if (!r.ok) throw new Error(`refused: spent ${r.spent}, held ${r.held}`);
  return r.hold;
}

describe("SqliteLedger", () => {
  it("counts holds against the budget until they are settled or released", async () => {
    const l = ledger(":memory:");
    const a = held(await l.reserve("k", 0.03, 0.05));
    expect(await l.reserve("k", 0.03, 0.05)).toEqual({ ok: false, spent: 0, held: 0.03 });
    // Another key has its own budget.
    held(await l.reserve("other", 0.03, 0.05));
    await l.settle(a, 0.01);
    expect(await l.spent("k")).toBeCloseTo(0.01, 10);
    const b = held(await l.reserve("k", 0.04, 0.05));
    await l.release(b);
    expect(await l.spent("k")).toBeCloseTo(0.01, 10);
    held(await l.reserve("k", 0.04, 0.05));
  });

  it("fits holds that sum exactly to the budget despite floating point", async () => {
    const l = ledger(":memory:");
    for (let i = 0; i < 3; i++) held(await l.reserve("k", 0.016, 0.048));
    expect((await l.reserve("k", 0.016, 0.048)).ok).toBe(false);
  });

  it("sees the holds and spend of another process on the same file", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "imagegate-ledger-")), "spend.sqlite");
    const one = ledger(file);
    const two = ledger(file);
    const h = held(await one.reserve("k", 0.04, 0.05));
    expect(await two.reserve("k", 0.02, 0.05)).toEqual({ ok: false, spent: 0, held: 0.04 });
    await one.settle(h, 0.04);
    expect(await two.spent("k")).toBeCloseTo(0.04, 10);
    expect(await two.reserve("k", 0.02, 0.05)).toMatchObject({ ok: false, held: 0 });
  });

  it("lets a hold that was never settled expire", async () => {
    let now = 0;
    const l = ledger(":memory:", () => now);
    held(await l.reserve("k", 0.05, 0.05));
    expect((await l.reserve("k", 0.01, 0.05)).ok).toBe(false);
    now = 1000;
    held(await l.reserve("k", 0.01, 0.05));
  });
});
