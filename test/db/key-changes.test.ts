/**
 * Key changes reach other replicas at once on Postgres: every change to an API key is a
 * NOTIFY on the keys channel, which a replica's listener hears (on a connection of its
 * own that comes back after the database does, saying so with one empty notice).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { KEYS_CHANNEL, KeysRepository } from "../../src/db/keys.ts";
import { openPostgres, type PostgresDatabase } from "../../src/db/postgres.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";

async function eventually(check: () => boolean, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (check()) return true;
    await sleep(50);
  }
  return false;
}

describe.skipIf(!postgresBin())("key changes between replicas", () => {
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

  it("notifies each change to an API key, and again after the database comes back", async () => {
    const heard: string[] = [];
    const listener = database.listen(KEYS_CHANNEL, (token) => heard.push(token));
    try {
      const repo = new KeysRepository(database);
      // The listener connects in the background: a change it may miss comes first.
      await repo.create("warm-up");
      await eventually(() => heard.includes("warm-up"), 20);
      await repo.create("t1");
      await repo.update("t1", { keyAlias: "renamed" });
      await repo.setBlocked("t1", true);
      await repo.regenerate("t1", "t2");
      await repo.delete(["t2"]);
      expect(await eventually(() => heard.filter((t) => t !== "warm-up").length >= 5)).toBe(true);
      expect(heard.filter((t) => t !== "warm-up" && t !== "")).toEqual([
        "t1",
        "t1",
        "t1",
        "t1",
        "t2",
      ]);
      heard.length = 0;
      await server.stop();
      await server.start();
      // Back: one empty notice (changes meanwhile were missed), then changes as before.
      expect(await eventually(() => heard.includes(""))).toBe(true);
      await new KeysRepository(database).create("t3");
      expect(await eventually(() => heard.includes("t3"))).toBe(true);
    } finally {
      await listener.close();
    }
  });
});
