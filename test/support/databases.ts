/**
 * Runs a suite against both databases: SQLite (in memory) and a real PostgreSQL started
 * for it (skipped with one line when postgres is not installed, unless required). The
 * suite gets `open()`, a fresh empty database each call, closed after the suite.
 */
import { afterAll, beforeAll, describe } from "vitest";
import type { Database } from "../../src/db/database.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import { type Postgres, postgresBin, startPostgres } from "./services.ts";

export function onEachDatabase(body: (open: () => Promise<Database>) => void): void {
  describe("on SQLite", () => {
    const opened: Database[] = [];
    afterAll(async () => {
      for (const d of opened) await d.close();
    });
    body(async () => {
      const d = openSqlite(":memory:");
      opened.push(d);
      return d;
    });
  });
  describe.skipIf(!postgresBin())("on PostgreSQL", () => {
    let server: Postgres | undefined;
    const opened: Database[] = [];
    beforeAll(async () => {
      server = await startPostgres();
    }, 60_000);
    afterAll(async () => {
      for (const d of opened) await d.close();
      await server?.close();
    });
    body(async () => {
      const d = await openPostgres(await server!.createDatabase());
      opened.push(d);
      return d;
    });
  });
}
