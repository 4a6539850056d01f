/**
 * connect-es's internals (any subpath of an `@connectrpc/*` package, e.g.
 * `@connectrpc/connect/protocol`) do not follow semantic versioning; one module,
 * src/server/connect-internals.ts, imports them, so an upgrade has one file to re-check.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { importSpecifiers, sourceFiles } from "../support/import-graph.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const DOOR = join("src", "server", "connect-internals.ts");
/** The folders with TypeScript of the project's own (generated code imports none). */
const FOLDERS = ["src", "test", "bench", "packages"];

const INTERNAL = /^@connectrpc\/[^/]+\/.+/;

describe("connect-es internals", () => {
  const importers = new Map<string, string[]>();
  for (const folder of FOLDERS.filter((f) => existsSync(join(ROOT, f)))) {
    const files = sourceFiles(join(ROOT, folder), ["gen"]);
    for (const [file, source] of files) {
      const internal = importSpecifiers(source).filter((s) => INTERNAL.test(s));
      if (internal.length > 0) importers.set(join(folder, file), internal);
    }
  }

  it("are imported by src/server/connect-internals.ts alone", () => {
    expect(importers.get(DOOR)).toContain("@connectrpc/connect/protocol");
    expect([...importers.keys()]).toEqual([DOOR]);
  });

  it("are told apart from the public entry points", () => {
    expect(INTERNAL.test("@connectrpc/connect/protocol-grpc")).toBe(true);
    expect(INTERNAL.test("@connectrpc/connect-node/dist/esm/x.js")).toBe(true);
    expect(INTERNAL.test("@connectrpc/connect")).toBe(false);
    expect(INTERNAL.test("@connectrpc/connect-node")).toBe(false);
  });
});
