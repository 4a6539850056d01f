/**
 * Tests that need a program from outside the project (prometheus today; redis-server,
 * postgres, chromium to come) run where it is installed. Elsewhere they skip with one
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

/** Whether `name` is an executable on PATH; when it is not, a line saying so, or an error if required. */
export function hasTestProgram(name: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (onPath(name, env.PATH ?? "")) return true;
  if (env[REQUIRE_VARIABLE] === "1")
    throw new Error(`${name} is not installed, and ${REQUIRE_VARIABLE}=1 requires it`);
  console.log(`${name} is not installed: skipping the tests that need it`);
  return false;
}

function onPath(name: string, path: string): boolean {
  return path
    .split(delimiter)
    .filter((dir) => dir !== "")
    .some((dir) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return statSync(join(dir, name)).isFile();
      } catch {
        return false;
      }
    });
}
