/**
 * The ledger's rules, the same on both databases (SQLite and a real PostgreSQL): holds
 * count against the budget until settled or released, sums that fit exactly fit, an
 * unsettled hold expires; and on Postgres, many reservations racing through several pools
 * (several replicas) never record more than the budget plus one request's cost.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Hold, Ledger, Reservation } from "../../src/auth/ledger.ts";
import { type PostgresDatabase, openPostgres } from "../../src/db/postgres.ts";
import { PostgresLedger } from "../../src/db/postgres-ledger.ts";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";

function held(r: Reservation): Hold {
  if (!r.ok) throw new Error(`refused: spent ${r.spent}, held ${r.held}`);
  return r.hold;
}

type Make = (now?: () => number) => Promise<Ledger>;

function rules(make: Make) {
  it("counts holds against the budget until they are settled or released", async () => {
    const l = await make();
    const a = held(await l.reserve("k", 0.03, 0.05));
    const refused = await l.reserve("k", 0.03, 0.05);
    expect(refused.ok).toBe(false);
    expect(refused).toMatchObject({ spent: 0 });
    expect(refused.ok === false && refused.held).toBeCloseTo(0.03, 10);
    held(await l.reserve("other", 0.03, 0.05));
    await l.settle(a, 0.01);
    expect(await l.spent("k")).toBeCloseTo(0.01, 10);
    const b = held(await l.reserve("k", 0.04, 0.05));
    await l.release(b);
    expect(await l.spent("k")).toBeCloseTo(0.01, 10);
    held(await l.reserve("k", 0.04, 0.05));
    await l.add("free", 0.5);
    await l.add("free", 0.25);
    expect(await l.spent("free")).toBeCloseTo(0.75, 10);
  });

  it("fits holds that sum exactly to the budget despite floating point", async () => {
    const l = await make();
    for (let i = 0; i < 3; i++) held(await l.reserve("k", 0.016, 0.048));
    expect((await l.reserve("k", 0.016, 0.048)).ok).toBe(false);
  });

  it("lets a hold that was never settled expire", async () => {
    let now = 0;
    const l = await make(() => now);
    held(await l.reserve("k", 0.05, 0.05));
    expect((await l.reserve("k", 0.01, 0.05)).ok).toBe(false);
    now = 1000;
    held(await l.reserve("k", 0.01, 0.05));
  });

  it("records the cost of a settled request even after its hold expired", async () => {
    let now = 0;
    const l = await make(() => now);
    const h = held(await l.reserve("k", 0.05, 0.05));
    now = 1000;
    held(await l.reserve("k", 0.01, 0.05));
    await l.settle(h, 0.04);
    expect(await l.spent("k")).toBeCloseTo(0.04, 10);
  });
}

describe("SqliteLedger", () => {
  const open: Ledger[] = [];
  afterAll(async () => {
    for (const l of open) await l.close();
  });
  rules(async (now) => {
    const l = new SqliteLedger(":memory:", { holdTtlMs: 1000, now });
    open.push(l);
    return l;
  });
});

describe.skipIf(!postgresBin())("PostgresLedger on a real PostgreSQL", () => {
  let server: Postgres;
  const open: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    for (const o of open.reverse()) await o.close();
    await server?.close();
  });

  async function database(url: string, max = 10): Promise<PostgresDatabase> {
    const db = await openPostgres(url, { max });
    open.push(db);
    return db;
  }

  describe("the ledger's rules", () => {
    rules(async (now) => {
      const db = await database(await server.createDatabase());
      const l = new PostgresLedger(db, { holdTtlMs: 1000, now });
      open.push(l);
      return l;
    });
  });

  it("admits exactly the holds that fit when 3 replicas' pools race for them at once", async () => {
    const url = await server.createDatabase();
    const ledgers = await Promise.all(
      [0, 1, 2].map(async () => {
        const l = new PostgresLedger(await database(url, 8));
        open.push(l);
        return l;
      }),
    );
    // Five keys, each with room for 5 holds of $0.04, each raced by 48 reservations at once.
    const admitted = await Promise.all(
      [0, 1, 2, 3, 4].map(async (k) => {
        const results = await Promise.all(
          Array.from({ length: 48 }, (_, i) => ledgers[i % 3]!.reserve(`key-${k}`, 0.04, 0.2)),
        );
        return results.filter((r) => r.ok).length;
      }),
    );
    expect(admitted).toEqual([5, 5, 5, 5, 5]);
  });

  it("keeps a budget exact across 3 replicas' pools racing 240 requests", async () => {
    const url = await server.createDatabase();
    // Three replicas, each with its own pool of 8 connections.
    const ledgers = await Promise.all(
      [0, 1, 2].map(async () => {
        const l = new PostgresLedger(await database(url, 8));
        open.push(l);
        return l;
      }),
    );
    const limit = 1;
    const most = 0.04;
    let settled = 0;
    let admitted = 0;
    // 24 clients, 8 on each replica, each making 10 requests one after another.
    await Promise.all(
      Array.from({ length: 24 }, async (_, client) => {
        const ledger = ledgers[client % 3]!;
        for (let i = 0; i < 10; i++) {
          const r = await ledger.reserve("team", most, limit);
          if (!r.ok) continue;
          admitted += 1;
          // Some fail upstream (released), the rest cost what they held or less.
          if ((client + i) % 7 === 0) {
            await ledger.release(r.hold);
            continue;
          }
          const cost = (client + i) % 2 === 0 ? most : most / 2;
          settled += cost;
          await ledger.settle(r.hold, cost);
        }
      }),
    );
    const spent = await ledgers[0]!.spent("team");
    expect(spent).toBeCloseTo(settled, 9);
    expect(spent).toBeLessThanOrEqual(limit + 1e-9);
    // Released and under-cost holds gave room back: more than limit/most were admitted,
    // and the budget was used, not refused early.
    expect(admitted).toBeGreaterThan(limit / most);
    expect(spent).toBeGreaterThan(limit / 2);
    // Nothing is still held.
    const refused = await ledgers[1]!.reserve("team", 10, limit);
    expect(refused).toMatchObject({ ok: false, held: 0 });
  });
});
