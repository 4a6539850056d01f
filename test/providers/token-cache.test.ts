import { describe, expect, it } from "vitest";
import { type FetchedToken, TokenCache } from "../../src/providers/token-cache.ts";

const signal = new AbortController().signal;

/** A token source that counts its fetches; `gate` holds every fetch until it opens. */
function counting(expiresInSeconds = 3600, gate?: Promise<void>) {
  let calls = 0;
  const fetch = async (): Promise<FetchedToken> => {
    calls += 1;
    const n = calls;
    await (gate ?? Promise.resolve());
    return { token: `token-${n}`, expiresInSeconds };
  };
  return { fetch, calls: () => calls };
}

function gated() {
  let open!: () => void;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  return { gate, open };
}

describe("TokenCache", () => {
  it("many concurrent callers share one fetch", async () => {
    const { gate, open } = gated();
    const source = counting(3600, gate);
    const cache = new TokenCache(source.fetch);
    const waiting = Array.from({ length: 50 }, () => cache.get(signal));
    open();
    expect(new Set(await Promise.all(waiting))).toEqual(new Set(["token-1"]));
    expect(source.calls()).toBe(1);
  });

  it("refreshes 5 minutes before expiry while the current token still serves, and stops sending it in its last minute", async () => {
    let now = 0;
    const { gate, open } = gated();
    let calls = 0;
    const cache = new TokenCache(
      async () => {
        calls += 1;
        if (calls > 1) await gate;
        return { token: `token-${calls}`, expiresInSeconds: 3600 };
      },
      () => now,
    );
    expect(await cache.get(signal)).toBe("token-1");
    now = 3_299_999;
    expect(await cache.get(signal)).toBe("token-1");
    expect(calls).toBe(1);
    // In the refresh window: one refresh starts, every caller still gets the current token.
    now = 3_300_000;
    expect(await Promise.all([cache.get(signal), cache.get(signal), cache.get(signal)])).toEqual([
      "token-1",
      "token-1",
      "token-1",
    ]);
    expect(calls).toBe(2);
    // In the last minute the current token is not sent: callers wait for the refresh.
    now = 3_540_000;
    const waiting = cache.get(signal);
    open();
    expect(await waiting).toBe("token-2");
    expect(calls).toBe(2);
  });

  it("short-lived tokens refresh at half their life and stop serving at three quarters", async () => {
    let now = 0;
    const source = counting(8);
    const cache = new TokenCache(source.fetch, () => now);
    await cache.get(signal);
    now = 3_999;
    expect(await cache.get(signal)).toBe("token-1");
    now = 4_000;
    expect(await cache.get(signal)).toBe("token-1"); // refresh started, old one still good
    await new Promise((r) => setTimeout(r, 0)); // the refresh lands
    expect(await cache.get(signal)).toBe("token-2");
    expect(source.calls()).toBe(2);
    now = 4_000 + 6_000; // three quarters of token-2's 8 s
    expect(await cache.get(signal)).toBe("token-3");
  });

  it("a failed fetch fails every waiter; the next call tries again", async () => {
    let calls = 0;
    const cache = new TokenCache(async () => {
      calls += 1;
      if (calls === 1) throw new Error("token endpoint down");
      return { token: "ok", expiresInSeconds: 3600 };
    });
    const results = await Promise.allSettled([cache.get(signal), cache.get(signal)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await cache.get(signal)).toBe("ok");
    expect(calls).toBe(2);
  });

  it("a caller that gives up stops waiting; the fetch still serves the others", async () => {
    const { gate, open } = gated();
    const source = counting(3600, gate);
    const cache = new TokenCache(source.fetch);
    const quitter = new AbortController();
    const gaveUp = cache.get(quitter.signal);
    const patient = cache.get(signal);
    quitter.abort(new Error("client left"));
    await expect(gaveUp).rejects.toThrow("client left");
    open();
    expect(await patient).toBe("token-1");
    expect(source.calls()).toBe(1);
    const gone = new AbortController();
    gone.abort(new Error("already gone"));
    cache.invalidate();
    await expect(cache.get(gone.signal)).rejects.toThrow("already gone");
  });

  it("invalidate() makes the next call fetch a new token", async () => {
    const source = counting();
    const cache = new TokenCache(source.fetch);
    await cache.get(signal);
    cache.invalidate();
    expect(await cache.get(signal)).toBe("token-2");
  });
});
