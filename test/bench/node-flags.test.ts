/**
 * The gateway's V8 flags live in three places that cannot import one another: the npm
 * scripts, the bin shim's shebang, and the benchmark's spawn. They must stay the same, or
 * the benchmark measures a gateway nobody runs.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GATEWAY_NODE_FLAGS } from "../../bench/harness.ts";

const root = new URL("../../", import.meta.url);

describe("the gateway's node flags", () => {
  const flags = GATEWAY_NODE_FLAGS.join(" ");

  it("are the ones npm start and npm run dev use", () => {
    const scripts = JSON.parse(readFileSync(new URL("package.json", root), "utf8"))
      .scripts as Record<string, string>;
    expect(scripts.start).toBe(`node ${flags} src/cli.ts serve`);
    expect(scripts.dev).toBe(`node ${flags} src/cli.ts dev`);
  });

  it("are the ones the imagegate command uses", () => {
    const shebang = readFileSync(new URL("bin/imagegate.mjs", root), "utf8").split("\n", 1)[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${flags}`);
  });
});
