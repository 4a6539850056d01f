import { describe, expect, it } from "vitest";
import { FaultQueue, parseFault } from "@imagegate/emulators/faults";

describe("FaultQueue probability", () => {
  it("applies a fault only to the requests its chance picks, and spares the rest", () => {
    const q = new FaultQueue();
    q.push({ status: 500, times: Number.POSITIVE_INFINITY, probability: 0.3 });
    const draws = [0.1, 0.5, 0.29, 0.31, 0.9];
    let i = 0;
    const hits = draws.map(() => q.take({}, () => draws[i++]!) !== undefined);
    expect(hits).toEqual([true, false, true, false, false]);
    expect(q.size).toBe(1);
    expect(q.applied).toBe(2);
  });

  it("reads probability from JSON and rejects values outside 0-1", () => {
    expect(parseFault({ status: 503, probability: 0.25 })).toEqual({
      status: 503,
      probability: 0.25,
    });
    expect(() => parseFault({ probability: 1.5 })).toThrow(/probability/);
  });
});
