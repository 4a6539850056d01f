/**
 * Several gateway replicas (in-process servers) sharing one real redis-server: a key's
 * rpm_limit holds across them, a deployment one replica cools down leaves rotation on the
 * others, and Redis killed and restarted under load fails no request (each replica serves
 * on its own state meanwhile, says so once, and its gauge goes 0 then 1).
 */
import { setTimeout as sleep } from "node:timers/promises";
import parsePrometheus from "parse-prometheus-text-format";
import { afterEach, beforeAll, afterAll, describe, expect, it } from "vitest";
import {
  type OpenAIEmulator,
  openaiFaults,
  startOpenAIEmulator,
} from "@imagegate/emulators/openai";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { redisBin, type Service, startRedis } from "../support/services.ts";
import { EMULATOR_KEY } from "../support/stack.ts";

const bin = redisBin();
const LIMITED = "sk-limited-0123456789abcdef";
const FREE = "sk-free-0123456789abcdef";
const catalog = loadCatalog();

interface Replica {
  gateway: Gateway;
  lines: string[];
}

let redis: Service;
let upstream: Record<"bad" | "good", OpenAIEmulator>;
let replicas: Replica[] = [];

afterEach(async () => {
  await Promise.all(replicas.map((r) => r.gateway.shutdown(1000)));
  replicas = [];
  upstream.bad.faults.clear();
});

function yaml(redisUrl: string | undefined, routerExtra = ""): string {
  const deployment = (id: "bad" | "good") => `  - model_name: g
    params:
      model: openai/dall-e-2
      api_key: ${EMULATOR_KEY}
      api_base: ${upstream[id].baseUrl}
    model_info:
      id: ${id}
`;
  return `router_settings:
${redisUrl === undefined ? "" : `  redis_url: ${redisUrl}\n`}  num_retries: 1
${routerExtra}keys:
  - key: ${LIMITED}
    name: limited
    rpm_limit: 6
  - key: ${FREE}
    name: free
model_list:
${deployment("bad")}${deployment("good")}`;
}

async function startReplicas(count: number, text: string): Promise<Replica[]> {
  for (let i = 0; i < count; i++) {
    const lines: string[] = [];
    const config = parseConfig(text, { HOST: "127.0.0.1", PORT: "0" }, catalog, "test");
    const gateway = await startGateway({
      config,
      catalog,
      logger: createLogger({ pretty: true, out: (line) => lines.push(line) }),
    });
    replicas.push({ gateway, lines });
  }
  return replicas;
}

async function generate(
  r: Replica,
  key: string,
): Promise<{ status: number; code?: string; deployment: string | null }> {
  const res = await fetch(`${r.gateway.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({
      model: "g",
      prompt: "a fox",
      size: "256x256",
      response_format: "b64_json",
    }),
  });
  const json = (await res.json()) as { error?: { code?: string } };
  return {
    status: res.status,
    code: json.error?.code,
    deployment: res.headers.get("x-imagegate-deployment"),
  };
}

async function gauge(
  r: Replica,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const families = parsePrometheus(await (await fetch(`${r.gateway.url}/metrics`)).text());
  const metric = families
    .find((f) => f.name === name)
    ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return metric === undefined ? undefined : Number(metric.value);
}

/** Polls (bounded, no time asserted) until `check` holds; returns whether it did. */
async function eventually(check: () => Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

describe.skipIf(!bin)("replicas sharing one Redis", () => {
  beforeAll(async () => {
    redis = await startRedis(bin);
    upstream = {
      bad: await startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 }),
      good: await startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 }),
    };
  });
  afterAll(async () => {
    await redis?.close();
    await Promise.all(Object.values(upstream ?? {}).map((u) => u.close()));
  });

  it("admits a key's rpm_limit across all replicas together", async () => {
    const rs = await startReplicas(3, yaml(redis.url));
    const answers = [];
    for (let i = 0; i < 15; i++) answers.push(await generate(rs[i % 3]!, LIMITED));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(6);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(9);
    expect(refused.every((a) => a.code === "key_rate_limit_exceeded")).toBe(true);
    // Another key is not limited by it.
    expect((await generate(rs[0]!, FREE)).status).toBe(200);
  });

  it("takes a deployment one replica cooled down out of rotation on the others", async () => {
    const rs = await startReplicas(3, yaml(redis.url, "  allowed_fails: 1\n  cooldown_time: 60\n"));
    const [a, b, c] = rs as [Replica, Replica, Replica];
    upstream.bad.faults.push({ ...openaiFaults.serverError(), times: Number.POSITIVE_INFINITY });
    // Replica a meets the failing deployment (retried on the good one) and cools it down.
    const earlier = upstream.bad.requests.length;
    const hit = await eventually(async () => {
      expect((await generate(a, FREE)).status).toBe(200);
      return upstream.bad.requests.length > earlier;
    }, 60);
    expect(hit).toBe(true);
    expect(await gauge(a, "imagegate_deployment_healthy", { imagegate_deployment: "bad" })).toBe(0);
    for (const r of [b, c]) {
      expect(
        await eventually(
          async () =>
            (await gauge(r, "imagegate_deployment_healthy", { imagegate_deployment: "bad" })) === 0,
        ),
      ).toBe(true);
    }
    const before = upstream.bad.requests.length;
    for (let i = 0; i < 20; i++) {
      const answer = await generate(rs[1 + (i % 2)]!, FREE);
      expect(answer).toMatchObject({ status: 200, deployment: "good" });
    }
    expect(upstream.bad.requests.length).toBe(before);
  });

  it("answers every request while Redis is killed and restarted, and says so once each way", async () => {
    const rs = await startReplicas(2, yaml(redis.url));
    for (const r of rs) expect(await gauge(r, "imagegate_shared_state_up")).toBe(1);
    const statuses: number[] = [];
    let loading = true;
    const load = Promise.all(
      Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; loading; i++)
          statuses.push((await generate(rs[(w + i) % 2]!, FREE)).status);
      }),
    );
    const answered = async (more: number) => {
      const target = statuses.length + more;
      await eventually(async () => statuses.length >= target, 400);
    };
    await answered(30);
    await redis.stop();
    for (const r of rs)
      expect(
        await eventually(async () => (await gauge(r, "imagegate_shared_state_up")) === 0),
      ).toBe(true);
    await answered(60);
    await redis.start();
    for (const r of rs)
      expect(
        await eventually(async () => (await gauge(r, "imagegate_shared_state_up")) === 1, 200),
      ).toBe(true);
    await answered(30);
    loading = false;
    await load;
    expect(statuses.length).toBeGreaterThanOrEqual(120);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const r of rs) {
      expect(r.lines.filter((l) => l.includes("is unreachable"))).toHaveLength(1);
      expect(r.lines.filter((l) => l.includes("is reachable again"))).toHaveLength(1);
    }
  });

  it("starts and serves with Redis unreachable, logging the outage once without the password", async () => {
    const closed = `redis://:hunter2-secret@127.0.0.1:${redis.port + 0}`;
    await redis.stop();
    try {
      const [r] = await startReplicas(1, yaml(closed));
      for (let i = 0; i < 8; i++)
        expect((await generate(r!, LIMITED)).status).toBe(i < 6 ? 200 : 429);
      expect(await gauge(r!, "imagegate_shared_state_up")).toBe(0);
      const outage = r!.lines.filter((l) => l.includes("is unreachable"));
      expect(outage).toHaveLength(1);
      expect(outage[0]).toContain(`127.0.0.1:${redis.port}/0`);
      expect(r!.lines.join("\n")).not.toContain("hunter2");
    } finally {
      await redis.start();
    }
  });
});
