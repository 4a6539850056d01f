/**
 * Which database the config selects and where the embedded one lives: `database_url`
 * (config, then DATABASE_URL), `spend_db`, and the per-user data directory of each platform,
 * with the old working-directory default kept when it is the file that holds the spend.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { dataDir, defaultDatabasePath } from "../../src/db/paths.ts";

const catalog = loadCatalog();
const URL = "postgresql://imagegate:secret@db.internal:5432/imagegate";

describe("database settings", () => {
  it("reads database_url from the config, else from DATABASE_URL", () => {
    const fromFile = parseConfig(`general_settings:\n  database_url: ${URL}\n`, {}, catalog);
    expect(fromFile.databaseUrl).toBe(URL);
    const fromEnv = parseConfig("", { DATABASE_URL: URL }, catalog);
    expect(fromEnv.databaseUrl).toBe(URL);
    const both = parseConfig(
      `general_settings:\n  database_url: ${URL}\n`,
      { DATABASE_URL: "postgres://other/db" },
      catalog,
    );
    expect(both.databaseUrl).toBe(URL);
    expect(parseConfig("", {}, catalog).databaseUrl).toBeUndefined();
  });

  it("refuses a database_url that is not Postgres, and ignores another program's DATABASE_URL with a warning", () => {
    expect(() =>
      parseConfig("general_settings:\n  database_url: mysql://x/y\n", {}, catalog, "c.yaml"),
    ).toThrow("c.yaml: general_settings.database_url: must be a postgresql:// URL");
    const other = parseConfig("", { DATABASE_URL: "mysql://app:pw@db/app" }, catalog);
    expect(other.databaseUrl).toBeUndefined();
    expect(other.warnings.join("\n")).toContain("DATABASE_URL is not a postgresql:// URL");
    expect(other.warnings.join("\n")).not.toContain("pw");
  });

  it("keeps spend_db as the embedded file's explicit place", () => {
    expect(parseConfig("general_settings:\n  spend_db: /x/s.db\n", {}, catalog).spendDb).toBe(
      "/x/s.db",
    );
    expect(parseConfig("", {}, catalog).spendDb).toBeUndefined();
  });
});

describe("the data directory", () => {
  it("is each platform's per-user place", () => {
    expect(dataDir({ XDG_DATA_HOME: "/xdg" }, "linux", "/home/u")).toBe("/xdg/imagegate");
    expect(dataDir({}, "linux", "/home/u")).toBe("/home/u/.local/share/imagegate");
    // A relative XDG_DATA_HOME is invalid per the spec, and ignored.
    expect(dataDir({ XDG_DATA_HOME: "rel" }, "linux", "/home/u")).toBe(
      "/home/u/.local/share/imagegate",
    );
    expect(dataDir({}, "darwin", "/Users/u")).toBe(
      "/Users/u/Library/Application Support/imagegate",
    );
    expect(dataDir({ LOCALAPPDATA: "C:\\L" }, "win32", "C:\\Users\\u")).toContain("imagegate");
  });

  it("holds the default file, unless only the old working-directory file exists", () => {
    const xdg = mkdtempSync(join(tmpdir(), "imagegate-xdg-"));
    const cwd = mkdtempSync(join(tmpdir(), "imagegate-cwd-"));
    const env = { XDG_DATA_HOME: xdg };
    expect(defaultDatabasePath(env, cwd)).toEqual({
      path: join(xdg, "imagegate/imagegate.sqlite"),
    });
    mkdirSync(join(cwd, ".imagegate"));
    writeFileSync(join(cwd, ".imagegate/spend.sqlite"), "");
    const legacy = join(cwd, ".imagegate/spend.sqlite");
    expect(defaultDatabasePath(env, cwd)).toEqual({ path: legacy, legacy });
    // Once the new file exists it wins.
    mkdirSync(join(xdg, "imagegate"));
    writeFileSync(join(xdg, "imagegate/imagegate.sqlite"), "");
    expect(defaultDatabasePath(env, cwd)).toEqual({
      path: join(xdg, "imagegate/imagegate.sqlite"),
    });
  });
});
