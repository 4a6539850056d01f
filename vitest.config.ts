import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Two cores: a couple of workers keep end-to-end servers from starving each other.
    maxWorkers: 2,
  },
});
