/**
 * Several processes or replicas opening one database at once: migrations are applied
 * exactly once (Postgres: three connections racing, under the advisory lock; SQLite:
 * three processes racing on a new file), and three processes writing one SQLite file
 * concurrently never fail with "database is locked" and lose nothing.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS, migratePostgres } from "../../src/db/migrations.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { spendLogs } from "../../src/db/spend-log.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";

const run = promisify(execFile);
const WRITER = resolve(import.meta.dirname, "fixtures/sqlite-writer.ts");
const LATEST = MIGRATIONS.at(-1)!.version;

describe("SQLite shared by three processes", () => {
  it("migrates a new file once and takes concurrent writes from all three, none refused by a lock", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "imagegate-db-")), "imagegate.sqlite");
    const requests = 600;
    const cost = 0.01;
    // Room for 1200 of the 1800 requests: the budget is contended too.
    const budget = 12;
    const outputs = await Promise.all(
      [0, 1, 2].map(() =>
        run(process.execPath, [WRITER, file, String(requests), String(cost), String(budget)], {
          timeout: 60_000,
        }),
      ),
    );
    const results = outputs.map((o) => JSON.parse(o.stdout) as { settled: number });
    const settled = results.reduce((n, r) => n + r.settled, 0);
    expect(settled).toBe(1200);
    const database = openSqlite(file);
    const ledger = new SqliteLedger(database);
    try {
      expect(await ledger.spent("shared")).toBeCloseTo(settled * cost, 9);
      expect(await ledger.spent("unbudgeted")).toBeCloseTo(settled * cost, 9);
      expect(await spendLogs(database, { from: 0, to: Date.now() + 1000 })).toHaveLength(settled);
      const versions = database.raw.prepare("SELECT version FROM imagegate_migrations").all();
      expect(versions).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
    } finally {
      await ledger.close();
      await database.close();
    }
  }, 90_000);

  it("adopts a file from before the migrations, keeping its spend", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "imagegate-db-")), "spend.sqlite");
    const { DatabaseSync } = await import("node:sqlite");
    const old = new DatabaseSync(file);
    old.exec(`
      CREATE TABLE key_spend (key_id TEXT PRIMARY KEY, usd REAL NOT NULL);
      CREATE TABLE key_holds (
        id TEXT PRIMARY KEY, key_id TEXT NOT NULL, usd REAL NOT NULL, expires_at INTEGER NOT NULL
      );
      CREATE INDEX key_holds_by_key ON key_holds (key_id);
      INSERT INTO key_spend VALUES ('k', 1.5);
    `);
    old.close();
    const ledger = new SqliteLedger(file);
    try {
      expect(await ledger.spent("k")).toBe(1.5);
    } finally {
      await ledger.close();
    }
  });
});

describe.skipIf(!postgresBin())("PostgreSQL migrated by three replicas at once", () => {
  let server: Postgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it("applies each version exactly once, the others waiting and finding it done", async () => {
    const url = await server.createDatabase();
    const replicas = [0, 1, 2].map(() => {
      const pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on("error", () => {});
      return { pool, db: new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }) };
    });
    try {
      const applied = await Promise.all(replicas.map((r) => migratePostgres(r.pool, r.db)));
      expect(applied.filter((a) => a.length > 0)).toEqual([MIGRATIONS.map((m) => m.version)]);
      expect(applied.filter((a) => a.length === 0)).toHaveLength(2);
      const { rows } = await replicas[0]!.pool.query(
        "SELECT version FROM imagegate_migrations ORDER BY version",
      );
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
      // Opening again finds nothing to do, and the schema works.
      const again = await openPostgres(url);
      try {
        await again.db.insertInto("key_spend").values({ key_id: "k", usd: 1 }).execute();
        expect(LATEST).toBeGreaterThanOrEqual(1);
      } finally {
        await again.close();
      }
    } finally {
      for (const r of replicas) await r.db.destroy();
    }
  });
});
