/**
 * Tests that need a program from outside the project (prometheus, chromium, redis-server;
 * postgres to come) run where it is installed. Elsewhere they skip with one
 * line saying which program is missing, unless `IMAGEGATE_REQUIRE_TEST_SERVICES=1` makes
 * them mandatory (`.ci/run` sets it after installing them): then a missing program is an
 * error, so CI cannot pass by skipping. Deliberately not inferred from `CI`, which every CI
 * system sets, including a new user's own.
 *
 *   describe.skipIf(!hasTestProgram("prometheus"))("a real Prometheus server", () => { … });
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export const REQUIRE_VARIABLE = "IMAGEGATE_REQUIRE_TEST_SERVICES";

/**
 * Whether `program` (a name looked up on PATH, or a path such as `/usr/bin/chromium`) is an
 * executable here; when it is not, a line saying so, or an error if required.
 */
export function hasTestProgram(program: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (isInstalled(program, env)) return true;
  if (env[REQUIRE_VARIABLE] === "1")
    throw new Error(`${program} is not installed, and ${REQUIRE_VARIABLE}=1 requires it`);
  console.log(`${program} is not installed: skipping the tests that need it`);
  return false;
}

/** Whether `program` (a name looked up on PATH, or a path) is an executable file here; says nothing. */
export function isInstalled(program: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return program.includes("/")
    ? isExecutable(program)
    : (env.PATH ?? "")
        .split(delimiter)
        .some((dir) => dir !== "" && isExecutable(join(dir, program)));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
