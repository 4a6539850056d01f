/**
 * A key the ring does not know is looked up in the database before the 401 (made on another
 * replica a moment ago), within bounds: a few lookups a second, a missing token not asked
 * about again for a while, config keys and blocked keys as the database says.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyRing } from "../../src/auth/keys.ts";
import { KeysRepository } from "../../src/db/keys.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import { KeyMiss } from "../../src/server/key-miss.ts";

const sha = (k: string) => createHash("sha256").update(k).digest("hex");

function setup(now: () => number, perSecond = 3) {
  const database = openSqlite(":memory:");
  const repo = new KeysRepository(database);
  const ring = new KeyRing("sk-master-0123456789", []);
  let lookups = 0;
  const counted = Object.create(repo) as KeysRepository;
  counted.get = (token: string) => {
    lookups += 1;
    return repo.get(token);
  };
  const miss = new KeyMiss(counted, ring, { perSecond, forgetMissesMs: 5000, now });
  return { repo, ring, miss, lookups: () => lookups };
}

describe("looking up keys the ring does not know", () => {
  it("adds a key made elsewhere to the ring, blocked keys as blocked", async () => {
    const { repo, ring, miss } = setup(() => 0);
    await repo.create(sha("sk-made-elsewhere-1"), { keyAlias: "elsewhere" });
    await repo.create(sha("sk-blocked-elsewhere-1"), { keyAlias: "blocked" });
    await repo.setBlocked(sha("sk-blocked-elsewhere-1"), true);
    expect(ring.lookup("sk-made-elsewhere-1")).toBeUndefined();
    await miss.find("sk-made-elsewhere-1");
    expect(ring.lookup("sk-made-elsewhere-1")?.identity?.name).toBe("elsewhere");
    await miss.find("sk-blocked-elsewhere-1");
    expect(ring.lookup("sk-blocked-elsewhere-1")).toEqual({ refused: "blocked", name: "blocked" });
  });

  it("asks at most a few times a second, and not again about a token found missing", async () => {
    let now = 10_000;
    const { miss, lookups } = setup(() => now);
    await miss.find("sk-nobody-1");
    expect(miss.find("sk-nobody-1")).toBeUndefined();
    await miss.find("sk-nobody-2");
    await miss.find("sk-nobody-3");
    // A fourth in the same second: the 401 at once.
    expect(miss.find("sk-nobody-4")).toBeUndefined();
    expect(lookups()).toBe(3);
    now += 1000;
    await miss.find("sk-nobody-4");
    expect(miss.find("sk-nobody-1")).toBeUndefined();
    now += 5000;
    await miss.find("sk-nobody-1");
    expect(lookups()).toBe(5);
  });
});
