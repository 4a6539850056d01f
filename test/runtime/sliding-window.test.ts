import { describe, expect, it } from "vitest";
import { InMemoryRouterState } from "../../src/router/state.ts";
import { RpmLimiter } from "../../src/auth/rate.ts";
import { MINUTE_MS, SlidingWindow } from "../../src/runtime/sliding-window.ts";

describe("SlidingWindow", () => {
  it("counts the events of the last minute; one exactly a minute old has left", () => {
    const w = new SlidingWindow();
    w.add(1_000);
    w.add(2_000);
    w.add(30_000);
    expect(w.count(30_000)).toBe(3);
    expect(w.count(1_000 + MINUTE_MS - 1)).toBe(3);
    expect(w.count(1_000 + MINUTE_MS)).toBe(2);
    expect(w.count(30_000 + MINUTE_MS)).toBe(0);
  });

  it("says when its oldest event leaves, or now when it is empty", () => {
    const w = new SlidingWindow(10_000);
    expect(w.freesAt(5)).toBe(5);
    w.add(100);
    w.add(4_000);
    expect(w.freesAt(5_000)).toBe(10_100);
    expect(w.freesAt(10_100)).toBe(14_000);
    w.clear();
    expect(w.count(10_200)).toBe(0);
  });
});

describe("the per-minute limits built on it", () => {
  it("RpmLimiter admits `limit` requests a minute and says when the next fits", () => {
    const rpm = new RpmLimiter();
    expect(rpm.admit("k", 2, 0)).toEqual({ ok: true });
    expect(rpm.admit("k", 2, 20_500)).toEqual({ ok: true });
    expect(rpm.admit("k", 2, 30_000)).toEqual({ ok: false, retryAfterSeconds: 30 });
    expect(rpm.admit("other", 2, 30_000)).toEqual({ ok: true });
    expect(rpm.admit("k", 2, MINUTE_MS)).toEqual({ ok: true });
    expect(rpm.admit("k", 2, MINUTE_MS + 20_400)).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it("the router's state counts a deployment's requests and failures of the last minute", () => {
    const state = new InMemoryRouterState();
    state.begin("d", 0);
    state.begin("d", 10_000);
    expect(state.recentRequests("d", 59_999)).toBe(2);
    expect(state.windowFreesAt("d", 59_999)).toBe(MINUTE_MS);
    expect(state.recentRequests("d", MINUTE_MS)).toBe(1);
    expect(state.windowFreesAt("d", MINUTE_MS)).toBe(10_000 + MINUTE_MS);
    expect(state.recordFailure("d", 0)).toBe(1);
    expect(state.recordFailure("d", 30_000)).toBe(2);
    expect(state.recordFailure("d", MINUTE_MS)).toBe(2);
    state.coolDown("d", MINUTE_MS + 5_000);
    expect(state.recordFailure("d", MINUTE_MS + 6_000)).toBe(1);
  });
});
