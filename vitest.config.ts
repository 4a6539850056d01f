import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Two cores: a couple of workers keep end-to-end servers from starving each other.
    maxWorkers: 2,
    // A gateway with a master key keeps its database in the user's data directory: during
    // tests, a fresh one per run instead of the real one.
    env: { XDG_DATA_HOME: mkdtempSync(join(tmpdir(), "imagegate-test-data-")) },
  },
});
