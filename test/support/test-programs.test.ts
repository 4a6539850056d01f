import { spawnSync } from "node:child_process";
import { basename, delimiter, dirname, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { hasTestProgram, REQUIRE_VARIABLE } from "./test-programs.ts";

const HELPER = resolve(import.meta.dirname, "test-programs.ts");
const MISSING = "imagegate-no-such-program";

/** Runs the helper for `name` in a fresh Node process with `extraEnv`, as a test file would at load. */
function inChild(name: string, extraEnv: Record<string, string>) {
  const code = `import { hasTestProgram } from ${JSON.stringify(HELPER)};\nconsole.log("available:", hasTestProgram(${JSON.stringify(name)}));`;
  const env = { ...process.env };
  delete env[REQUIRE_VARIABLE];
  Object.assign(env, extraEnv);
  return spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    env,
    encoding: "utf8",
  });
}

describe("hasTestProgram", () => {
  it("without the variable, a missing program skips with one line naming it", () => {
    const run = inChild(MISSING, {});
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(
      `${MISSING} is not installed: skipping the tests that need it\navailable: false\n`,
    );
  });

  it(`with ${REQUIRE_VARIABLE}=1, a missing program is an error`, () => {
    const run = inChild(MISSING, { [REQUIRE_VARIABLE]: "1" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(
      `${MISSING} is not installed, and ${REQUIRE_VARIABLE}=1 requires it`,
    );
    expect(run.stdout).not.toContain("available");
  });

  it("an installed program is available either way, and CI=true changes nothing", () => {
    // Node itself, found on PATH through its own folder.
    const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
    const node = basename(process.execPath);
    expect(inChild(node, { PATH: path, [REQUIRE_VARIABLE]: "1" }).stdout).toBe("available: true\n");
    expect(inChild(MISSING, { CI: "true" }).status).toBe(0);
    expect(hasTestProgram(node, { PATH: path })).toBe(true);
    expect(hasTestProgram(MISSING, { PATH: path, [REQUIRE_VARIABLE]: "0" })).toBe(false);
  });

  it("a program named by its path is looked for there", () => {
    expect(hasTestProgram(process.execPath, { PATH: "" })).toBe(true);
    const missing = resolve(import.meta.dirname, MISSING);
    expect(() => hasTestProgram(missing, { [REQUIRE_VARIABLE]: "1" })).toThrow(
      `${missing} is not installed`,
    );
  });

  it("a folder of that name on PATH is not the program", () => {
    const parent = dirname(dirname(HELPER)); // test/, which holds a folder named support
    expect(hasTestProgram("support", { PATH: parent })).toBe(false);
  });
});
