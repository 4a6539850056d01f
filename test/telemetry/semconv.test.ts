/**
 * semconv.ts copies the incubating semantic-convention names rather than importing that
 * entry at runtime: each copy must be the package's own value, as the stable re-exports are.
 */
import * as incubating from "@opentelemetry/semantic-conventions/incubating";
import { describe, expect, it } from "vitest";
import * as semconv from "../../src/telemetry/semconv.ts";

describe("telemetry semconv names", () => {
  it("are the installed @opentelemetry/semantic-conventions' values, name for name", () => {
    const published = new Map<string, unknown>(Object.entries(incubating));
    const ours = Object.entries(semconv);
    expect(ours.length).toBeGreaterThan(20);
    for (const [name, value] of ours) {
      expect(published.has(name), name).toBe(true);
      expect(value, name).toBe(published.get(name));
    }
  });
});
