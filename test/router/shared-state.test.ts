/**
 * The shared router state and key limiter against a real redis-server, two or three
 * "replicas" (each its own RedisLink and state) in one process: limits that need an atomic
 * decision hold across them, failures add up, cooldowns and routing figures propagate.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SharedRpmLimiter } from "../../src/auth/shared-rate.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { SharedRouterState } from "../../src/router/shared-state.ts";
import { RedisLink } from "../../src/shared/redis-link.ts";
import { redisBin, type Service, startRedis } from "../support/services.ts";

const bin = redisBin();

describe.skipIf(!bin)("router state shared through Redis", () => {
  let redis: Service;
  const links: RedisLink[] = [];
  const states: SharedRouterState[] = [];
  let n = 0;

  beforeAll(async () => {
    redis = await startRedis(bin);
  });
  afterAll(async () => {
    for (const s of states) await s.close();
    for (const l of links) await l.close();
    await redis.close();
  });

  async function replica(
    deployments: { id: string; rpm?: number; maxParallel?: number }[] = [],
  ): Promise<{ link: RedisLink; state: SharedRouterState }> {
    const link = new RedisLink({ url: redis.url, logger: silentLogger });
    links.push(link);
    await link.ready();
    expect(link.up).toBe(true);
    const state = new SharedRouterState(link, { deployments });
    states.push(state);
    return { link, state };
  }

  /** Polls (bounded) until `check` holds; returns whether it did. */
  async function eventually(check: () => boolean): Promise<boolean> {
    for (let i = 0; i < 300; i++) {
      if (check()) return true;
      await sleep(50);
    }
    return check();
  }

  const fresh = () => `dep-${process.pid}-${++n}`;

  it("admits at most a deployment's rpm across replicas", async () => {
    const id = fresh();
    const limits = { rpm: 5 };
    const [a, b, c] = [await replica(), await replica(), await replica()];
    const admitted = await Promise.all(
      Array.from({ length: 12 }, (_, i) => [a, b, c][i % 3]!.state.begin(id, Date.now(), limits)),
    );
    expect(admitted.filter(Boolean)).toHaveLength(5);
  });

  it("admits at most max_parallel_requests in flight across replicas, and frees a slot on end", async () => {
    const id = fresh();
    const limits = { maxParallel: 2 };
    const a = await replica();
    const b = await replica();
    expect(await a.state.begin(id, Date.now(), limits)).toBe(true);
    expect(await b.state.begin(id, Date.now(), limits)).toBe(true);
    expect(await a.state.begin(id, Date.now(), limits)).toBe(false);
    expect(await b.state.begin(id, Date.now(), limits)).toBe(false);
    // b's figures include a's call (a sync read it): a later 1 can only come from Redis
    // having a's release, not from b not having synced yet.
    expect(await eventually(() => b.state.inflight(id) === 2)).toBe(true);
    a.state.end(id);
    // The slot is released with one write of its own; the next admission sees it.
    expect(await eventually(() => b.state.inflight(id) === 1)).toBe(true);
    expect(await b.state.begin(id, Date.now(), limits)).toBe(true);
    expect(b.state.inflight(id)).toBe(2);
  });

  it("counts failures of every replica", async () => {
    const id = fresh();
    const a = await replica([{ id }]);
    const b = await replica([{ id }]);
    expect(await a.state.recordFailure(id, Date.now())).toBe(1);
    expect(await b.state.recordFailure(id, Date.now())).toBe(2);
    expect(await a.state.recordFailure(id, Date.now())).toBe(3);
    // A cooldown starts the count again.
    a.state.coolDown(id, Date.now() + 10_000);
    expect(await eventually(() => b.state.cooldownUntil(id, Date.now()) !== undefined)).toBe(true);
    expect(await b.state.recordFailure(id, Date.now())).toBe(1);
  });

  it("shows one replica's cooldown on the others, until it ends", async () => {
    const id = fresh();
    const a = await replica([{ id }]);
    const b = await replica([{ id }]);
    const c = await replica([{ id }]);
    expect(b.state.cooldownUntil(id, Date.now())).toBeUndefined();
    // Long enough to be seen on a loaded machine before it ends; its end is awaited too.
    a.state.coolDown(id, Date.now() + 3000);
    expect(await eventually(() => b.state.cooldownUntil(id, Date.now()) !== undefined)).toBe(true);
    expect(await eventually(() => c.state.cooldownUntil(id, Date.now()) !== undefined)).toBe(true);
    expect(await eventually(() => b.state.cooldownUntil(id, Date.now()) === undefined)).toBe(true);
  }, 40_000);

  it("shares in-flight counts, recent requests and latency for the strategies", async () => {
    const id = fresh();
    const a = await replica([{ id }]);
    const b = await replica([{ id }]);
    for (let i = 0; i < 4; i++) expect(a.state.begin(id, Date.now())).toBe(true);
    a.state.recordLatency(id, 100);
    a.state.recordLatency(id, 300);
    expect(
      await eventually(
        () =>
          b.state.inflight(id) === 4 &&
          b.state.recentRequests(id, Date.now()) === 4 &&
          b.state.latency(id) === 200,
      ),
    ).toBe(true);
    for (let i = 0; i < 4; i++) a.state.end(id);
    expect(await eventually(() => b.state.inflight(id) === 0)).toBe(true);
  });

  it("limits a key's requests per minute across replicas, one round trip each", async () => {
    const key = `key-${process.pid}-${++n}`;
    const limiters = [await replica(), await replica(), await replica()].map(
      ({ link }) => new SharedRpmLimiter(link),
    );
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => limiters[i % 3]!.admit(key, 4)),
    );
    expect(answers.filter((a) => a.ok)).toHaveLength(4);
    const refused = answers.find((a) => !a.ok);
    expect(refused).toMatchObject({ ok: false });
    if (refused?.ok === false) {
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
    }
  });
});
