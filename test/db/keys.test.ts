/**
 * The keys repository on both databases: a key's whole stored life (create, read with its
 * spend, update, block, regenerate with its spend, delete with its spend), config-file keys
 * listed but never changed, and periodic budget resets.
 */
import { describe, expect, it } from "vitest";
import type { Hold, Reservation } from "../../src/auth/ledger.ts";
import { ledgerOn } from "../../src/db/database.ts";
import { KeysRepository, parseDuration } from "../../src/db/keys.ts";
import { onEachDatabase } from "../support/databases.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

function held(r: Reservation): Hold {
  if (!r.ok) throw new Error("refused");
  return r.hold;
}

describe("parseDuration", () => {
  it("reads seconds, minutes, hours and days, and nothing else", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("24h")).toBe(86_400_000);
    expect(parseDuration("30d")).toBe(30 * 86_400_000);
    for (const bad of ["", "0d", "1w", "-1d", "1.5h", "d", "10 m"])
      expect(parseDuration(bad)).toBeUndefined();
  });
});

onEachDatabase((open) => {
  it("stores a key's whole life, its spend going with it", async () => {
    const database = await open();
    let now = 1_000_000;
    const keys = new KeysRepository(database, () => now);
    const ledger = ledgerOn(database);
    try {
      const made = await keys.create(A, {
        keyAlias: "team-a",
        models: ["image-hq"],
        rpmLimit: 60,
        maxBudget: 25,
        budgetDuration: "30d",
        expires: now + 3_600_000,
        metadata: { team: "a" },
      });
      expect(made).toEqual({
        token: A,
        keyAlias: "team-a",
        models: ["image-hq"],
        rpmLimit: 60,
        maxBudget: 25,
        budgetDuration: "30d",
        budgetResetAt: now + 30 * 86_400_000,
        expires: now + 3_600_000,
        blocked: false,
        metadata: { team: "a" },
        createdAt: now,
        updatedAt: now,
        source: "api",
      });
      await expect(keys.create(A)).rejects.toThrow();
      expect(await keys.get(A)).toEqual(made);

      const h = held(await ledger.reserve(A, 0.5, 25));
      await ledger.settle(h, 0.25);
      expect((await keys.info(A))?.spend).toBeCloseTo(0.25, 10);

      now += 1000;
      const updated = await keys.update(A, { models: null, rpmLimit: null, keyAlias: "team-a2" });
      expect(updated).toMatchObject({
        models: undefined,
        rpmLimit: undefined,
        keyAlias: "team-a2",
        maxBudget: 25,
        updatedAt: now,
      });
      expect(await keys.update(B, { rpmLimit: 1 })).toBeUndefined();

      expect((await keys.setBlocked(A, true))?.blocked).toBe(true);
      expect((await keys.setBlocked(A, false))?.blocked).toBe(false);

      // A request in flight across the regeneration is charged to the new token.
      const inFlight = held(await ledger.reserve(A, 0.5, 25));
      const regenerated = await keys.regenerate(A, B);
      expect(regenerated).toMatchObject({ token: B, keyAlias: "team-a2", maxBudget: 25 });
      expect(await keys.get(A)).toBeUndefined();
      expect((await keys.info(B))?.spend).toBeCloseTo(0.25, 10);
      await ledger.settle(inFlight, 0.5);
      expect((await keys.info(B))?.spend).toBeCloseTo(0.75, 10);
      expect(await ledger.spent(A)).toBe(0);
      expect(await keys.regenerate(A, C)).toBeUndefined();

      await keys.create(C, { keyAlias: "team-c" });
      expect(await keys.list()).toEqual([B, C]);
      expect(await keys.list({ alias: "team-c" })).toEqual([C]);

      expect(await keys.delete([B, "f".repeat(64)])).toEqual([B]);
      expect(await keys.info(B)).toBeUndefined();
      expect(await ledger.spent(B)).toBe(0);
      expect(await keys.list()).toEqual([C]);
    } finally {
      await ledger.close();
    }
  });

  it("lists config-file keys with source config, follows the file, and never changes them", async () => {
    const database = await open();
    const keys = new KeysRepository(database);
    await keys.create(C, { keyAlias: "api-made" });
    await keys.syncConfigKeys([
      { token: A, alias: "team-a", models: ["m"], maxBudget: 5 },
      { token: B, alias: "team-b" },
      // A config entry whose token the API made does not take the API's row over.
      { token: C, alias: "config-c" },
    ]);
    expect(await keys.get(A)).toMatchObject({
      source: "config",
      keyAlias: "team-a",
      models: ["m"],
      maxBudget: 5,
    });
    expect(await keys.get(C)).toMatchObject({ source: "api", keyAlias: "api-made" });
    expect((await keys.list({ source: "config" })).sort()).toEqual([A, B]);

    expect(await keys.update(A, { maxBudget: 100 })).toBeUndefined();
    expect(await keys.setBlocked(A, true)).toBeUndefined();
    expect(await keys.regenerate(A, "d".repeat(64))).toBeUndefined();
    expect(await keys.delete([A])).toEqual([]);
    expect(await keys.get(A)).toMatchObject({ maxBudget: 5, blocked: false });

    await keys.syncConfigKeys([{ token: A, alias: "team-a", rpmLimit: 10 }]);
    expect(await keys.get(A)).toMatchObject({ models: undefined, rpmLimit: 10 });
    expect(await keys.get(B)).toBeUndefined();
    expect(await keys.get(C)).toMatchObject({ source: "api" });
  });

  it("resets spend when a budget period ends, once, skipping periods missed", async () => {
    const database = await open();
    let now = 0;
    const keys = new KeysRepository(database, () => now);
    const ledger = ledgerOn(database);
    try {
      await keys.create(A, { maxBudget: 1, budgetDuration: "10m" });
      await keys.create(B, { maxBudget: 1 });
      for (const k of [A, B]) await ledger.settle(held(await ledger.reserve(k, 0.5, 1)), 0.5);
      now = 599_999;
      expect(await keys.resetDueBudgets()).toEqual([]);
      // Three and a half periods later: one reset, the next one at the 4th period's end.
      now = 600_000 * 3.5;
      expect(await keys.resetDueBudgets()).toEqual([A]);
      expect(await keys.resetDueBudgets()).toEqual([]);
      expect(await ledger.spent(A)).toBe(0);
      expect(await ledger.spent(B)).toBeCloseTo(0.5, 10);
      expect((await keys.get(A))?.budgetResetAt).toBe(600_000 * 4);
    } finally {
      await ledger.close();
    }
  });

  it("lets the ledger's transactions and the repository's interleave on one connection", async () => {
    const database = await open();
    const keys = new KeysRepository(database);
    const ledger = ledgerOn(database);
    try {
      await keys.create(A, { maxBudget: 10 });
      // Each regenerate holds a transaction open across awaits while reservations arrive.
      let token = A;
      const regenerations = (async () => {
        for (let i = 0; i < 20; i++) {
          const next = (i % 2 === 0 ? B : A).replace(/^./, String(i % 10));
          expect(await keys.regenerate(token, next)).toBeDefined();
          token = next;
        }
      })();
      // Ledger calls at every point of those transactions: one after each microtask.
      const ledgerWork = Array.from({ length: 20 }, async (_, i) => {
        for (let j = 0; j < i * 3; j++) await Promise.resolve();
        held(await ledger.reserve(`other-${i}`, 0.1, 1));
        await ledger.add("free", 0.01);
      });
      await Promise.all([regenerations, ...ledgerWork]);
      expect(await keys.get(token)).toMatchObject({ maxBudget: 10 });
      expect(await ledger.spent("free")).toBeCloseTo(0.2, 10);
    } finally {
      await ledger.close();
    }
  });
});
