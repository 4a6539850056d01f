import { describe, expect, it } from "vitest";
import { deadline } from "../../src/runtime/deadline.ts";

describe("deadline", () => {
  it("aborts with a TimeoutError when the time is up, and says so", async () => {
    const d = deadline(new AbortController().signal, 10, "upstream timeout");
    await new Promise((r) => setTimeout(r, 30));
    expect(d.signal.aborted).toBe(true);
    expect(d.expired).toBe(true);
    expect((d.signal.reason as DOMException).name).toBe("TimeoutError");
    d.dispose();
  });

  it("aborts with the caller's reason when the caller does, already or later", () => {
    const reason = new Error("client left");
    const caller = new AbortController();
    const d = deadline(caller.signal, 10_000, "x");
    caller.abort(reason);
    expect(d.signal.reason).toBe(reason);
    expect(d.expired).toBe(false);
    d.dispose();
    const late = deadline(caller.signal, 10_000, "x");
    expect(late.signal.reason).toBe(reason);
    late.dispose();
  });

  it("once disposed, neither the timer nor the caller aborts it", async () => {
    const caller = new AbortController();
    const d = deadline(caller.signal, 10, "x");
    d.dispose();
    caller.abort();
    await new Promise((r) => setTimeout(r, 30));
    expect(d.signal.aborted).toBe(false);
  });
});
