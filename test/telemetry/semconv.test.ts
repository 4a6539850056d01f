/**
 * semconv.ts copies the incubating semantic-convention names rather than importing that
 * entry at runtime: each copy must be the package's own value, as the stable re-exports are.
 */
import * as incubating from "@opentelemetry/semantic-conventions/incubating";
import { describe, expect, it } from "vitest";
import * as semconv from "../../src/telemetry/semconv.ts";

describe("telemetry semconv names", () => {
  it("are the installed @opentelemetry/semantic-conventions' values, name for name", () => {
    const names = Object.keys(semconv);
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) {
      expect(incubating, name).toHaveProperty(name);
      expect(semconv[name as keyof typeof semconv], name).toBe(
        incubating[name as keyof typeof incubating],
      );
    }
  });
});
