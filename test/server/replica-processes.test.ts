/**
 * Three gateway processes (`imagegate serve`, as an operator runs them) sharing one real
 * redis-server and one real PostgreSQL (contract: "Replicas share state (Redis) and one
 * database (Postgres)"): a key's rpm_limit across all three, a budget raced by 40 requests,
 * a cooldown seen by every replica, a key made on one replica used on another; Redis killed
 * and restarted under load; Postgres stopped (503 for budgeted keys, journaled spend written
 * once it is back); a replica killed with SIGKILL during the outage and started again (its
 * journal, spend-log rows included, replayed once, also when a crash would have left it on
 * disk twice). Last, a soak:
 * 3,000 requests at concurrency 96 with 30% upstream faults and a Redis restart, every
 * request answered once and the spend equal to the sum of the cost headers.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import parsePrometheus from "parse-prometheus-text-format";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type OpenAIEmulator,
  openaiFaults,
  startOpenAIEmulator,
} from "@imagegate/emulators/openai";
import { type CliGateway, startCliGateway } from "../support/gateway-cli.ts";
import {
  type Postgres,
  postgresBin,
  redisBin,
  type Service,
  startPostgres,
  startRedis,
} from "../support/services.ts";
import { EMULATOR_KEY } from "../support/stack.ts";

const MASTER = "sk-master-replicas-0123456789";
const KEYS = {
  rpm: "sk-rpm-replicas-0123456789",
  budget: "sk-budget-replicas-0123456789",
  free: "sk-free-replicas-0123456789",
  outage: "sk-outage-replicas-0123456789",
  crash: "sk-crash-replicas-0123456789",
  soak: "sk-soak-replicas-0123456789",
};
const BUDGET = 0.1;
const DALLE2_256 = 0.016;
const sha = (k: string) => createHash("sha256").update(k).digest("hex");

let redis: Service;
let postgres: Postgres;
let databaseUrl: string;
let upstream: Record<"good" | "bad" | "flaky", OpenAIEmulator>;
const configFiles: string[] = [];
const journals: string[] = [];
const replicas: CliGateway[] = [];

function config(journal: string): string {
  const deployment = (
    group: string,
    id: string,
    emulator: OpenAIEmulator,
  ) => `  - model_name: ${group}
    params:
      model: openai/dall-e-2
      api_key: ${EMULATOR_KEY}
      api_base: ${emulator.baseUrl}
    model_info:
      id: ${id}
`;
  return `router_settings:
  redis_url: ${redis.url}
  num_retries: 4
  # Only failures that break a deployment (the cooldown test's) take one out of rotation.
  allowed_fails: 1000000
  cooldown_time: 60
general_settings:
  master_key: ${MASTER}
  database_url: ${databaseUrl}
  spend_journal_dir: ${journal}
keys:
  - key: ${KEYS.rpm}
    name: rpm
    rpm_limit: 6
  - key: ${KEYS.budget}
    name: budget
    max_budget: ${BUDGET}
  - key: ${KEYS.free}
    name: free
  - key: ${KEYS.outage}
    name: outage
    max_budget: 100
  - key: ${KEYS.crash}
    name: crash
  - key: ${KEYS.soak}
    name: soak
    max_budget: 1000
model_list:
${deployment("cheap", "cheap", upstream.good)}${deployment("cool", "bad", upstream.bad)}${deployment("cool", "good", upstream.good)}${deployment("soak", "flaky-1", upstream.flaky)}${deployment("soak", "flaky-2", upstream.flaky)}${deployment("soak", "flaky-3", upstream.flaky)}`;
}

async function startReplica(i: number): Promise<CliGateway> {
  const r = await startCliGateway({ configFile: configFiles[i]! });
  replicas[i] = r;
  return r;
}

interface Answer {
  status: number;
  code?: string;
  cost: number;
  deployment: string | null;
}

async function generate(r: CliGateway, key: string, model = "cheap"): Promise<Answer> {
  const res = await fetch(`${r.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, prompt: "a fox", size: "256x256" }),
  });
  const json = (await res.json()) as { error?: { code?: string } };
  const cost = res.headers.get("x-imagegate-cost-usd");
  return {
    status: res.status,
    code: json.error?.code,
    cost: cost === null ? 0 : Number(cost),
    deployment: res.headers.get("x-imagegate-deployment"),
  };
}

async function gauge(
  r: CliGateway,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const families = parsePrometheus(await (await fetch(`${r.url}/metrics`)).text());
  const metric = families
    .find((f) => f.name === name)
    ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return metric === undefined ? undefined : Number(metric.value);
}

/** Polls (bounded, no time asserted) until `check` holds; returns whether it did. */
async function eventually(check: () => Promise<boolean> | boolean, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The key's spend in the database. */
async function spent(key: string): Promise<number> {
  const rows = await query<{ usd: number }>("SELECT usd FROM key_spend WHERE key_id = $1", [
    sha(key),
  ]);
  return rows[0]?.usd ?? 0;
}

const sum = (answers: Answer[]) => answers.reduce((n, a) => n + a.cost, 0);
const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

describe.skipIf(!redisBin() || !postgresBin())(
  "three gateway processes sharing Redis and PostgreSQL",
  () => {
    beforeAll(async () => {
      [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
      databaseUrl = await postgres.createDatabase();
      const emulator = () =>
        startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 });
      upstream = { good: await emulator(), bad: await emulator(), flaky: await emulator() };
      const dir = mkdtempSync(join(tmpdir(), "imagegate-replicas-"));
      for (let i = 0; i < 3; i++) {
        journals[i] = join(dir, `journal-${i}`);
        configFiles[i] = join(dir, `replica-${i}.yaml`);
        writeFileSync(configFiles[i]!, config(journals[i]!));
      }
      await Promise.all([0, 1, 2].map(startReplica));
    }, 120_000);

    afterAll(async () => {
      await Promise.all(replicas.map((r) => r?.kill("SIGTERM")));
      await Promise.all(Object.values(upstream ?? {}).map((u) => u.close()));
      await redis?.close();
      await postgres?.close();
    }, 60_000);

    it("admit a key's rpm_limit across all three together", async () => {
      const answers: Answer[] = [];
      for (let i = 0; i < 12; i++) answers.push(await generate(replicas[i % 3]!, KEYS.rpm));
      expect(answers.filter((a) => a.status === 200)).toHaveLength(6);
      const refused = answers.filter((a) => a.status === 429);
      expect(refused).toHaveLength(6);
      expect(refused.every((a) => a.code === "key_rate_limit_exceeded")).toBe(true);
    });

    it("hold one budget raced by 40 concurrent requests across the three", async () => {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => generate(replicas[i % 3]!, KEYS.budget)),
      );
      const served = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 429);
      expect(served.length + refused.length).toBe(40);
      expect(served.length).toBeGreaterThan(0);
      expect(refused.every((a) => a.code === "budget_exceeded")).toBe(true);
      expect(await eventually(async () => close(await spent(KEYS.budget), sum(served)))).toBe(true);
      expect(await spent(KEYS.budget)).toBeLessThanOrEqual(BUDGET + DALLE2_256 + 1e-9);
    });

    it("take a deployment one replica cooled down out of rotation on the others", async () => {
      const [a, b, c] = replicas as [CliGateway, CliGateway, CliGateway];
      // Out of quota: a failure that takes the deployment out at once (for cooldown_time).
      upstream.bad.faults.push({
        ...openaiFaults.insufficientQuota(),
        times: Number.POSITIVE_INFINITY,
      });
      const earlier = upstream.bad.requests.length;
      const hit = await eventually(async () => {
        expect((await generate(a, KEYS.free, "cool")).status).toBe(200);
        return upstream.bad.requests.length > earlier;
      }, 60);
      expect(hit).toBe(true);
      for (const r of [b, c]) {
        expect(
          await eventually(
            async () =>
              (await gauge(r, "imagegate_deployment_healthy", { imagegate_deployment: "bad" })) ===
              0,
          ),
        ).toBe(true);
      }
      const before = upstream.bad.requests.length;
      for (let i = 0; i < 12; i++) {
        expect(await generate(replicas[1 + (i % 2)]!, KEYS.free, "cool")).toMatchObject({
          status: 200,
          deployment: "good",
        });
      }
      expect(upstream.bad.requests.length).toBe(before);
      upstream.bad.faults.clear();
    });

    it("serve a key made with /key/generate on one replica from the others", async () => {
      const made = await fetch(`${replicas[0]!.url}/key/generate`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${MASTER}` },
        body: JSON.stringify({ key_alias: "made-on-0", max_budget: 1 }),
      });
      expect(made.status).toBe(200);
      const { key } = (await made.json()) as { key: string };
      // At once on the others too: a key they do not know yet is looked up before the 401.
      for (const r of replicas) expect((await generate(r, key)).status).toBe(200);
      // Its spend, as any replica reports it once each has written what it journaled.
      const info = async () => {
        const res = await fetch(`${replicas[2]!.url}/key/info?key=${encodeURIComponent(key)}`, {
          headers: { authorization: `Bearer ${MASTER}` },
        });
        return ((await res.json()) as { info: { spend: number; key_alias: string } }).info;
      };
      expect((await info()).key_alias).toBe("made-on-0");
      expect(await eventually(async () => close((await info()).spend, 3 * DALLE2_256))).toBe(true);
      // Blocked on one replica: refused on every replica (the others hear of it by NOTIFY).
      const blocked = await fetch(`${replicas[1]!.url}/key/block`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${MASTER}` },
        body: JSON.stringify({ key }),
      });
      expect(blocked.status).toBe(200);
      for (const r of replicas) {
        expect(await eventually(async () => (await generate(r, key)).code === "key_blocked")).toBe(
          true,
        );
      }
    });

    it("answer every request while Redis is killed and restarted", async () => {
      const statuses: number[] = [];
      let loading = true;
      const load = Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = 0; loading; i++)
            statuses.push((await generate(replicas[(w + i) % 3]!, KEYS.free)).status);
        }),
      );
      const answered = async (more: number) => {
        const target = statuses.length + more;
        expect(await eventually(() => statuses.length >= target, 600)).toBe(true);
      };
      try {
        await answered(30);
        await redis.stop();
        for (const r of replicas)
          expect(
            await eventually(async () => (await gauge(r, "imagegate_shared_state_up")) === 0),
          ).toBe(true);
        await answered(30);
        await redis.start();
        for (const r of replicas)
          expect(
            await eventually(async () => (await gauge(r, "imagegate_shared_state_up")) === 1),
          ).toBe(true);
        await answered(30);
      } finally {
        loading = false;
        await load;
      }
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    });

    it("refuse budgeted keys with 503 while Postgres is stopped and write the journaled spend once it is back", async () => {
      const before = await generate(replicas[0]!, KEYS.outage);
      expect(before.status).toBe(200);
      const freeBefore = await spentAfterFlush(KEYS.free);
      await postgres.stop();
      const during: Answer[] = [];
      const freeDuring: Answer[] = [];
      try {
        for (const r of replicas)
          expect(
            await eventually(async () => (await gauge(r, "imagegate_database_up")) === 0),
          ).toBe(true);
        for (let i = 0; i < 9; i++) {
          during.push(await generate(replicas[i % 3]!, KEYS.outage));
          freeDuring.push(await generate(replicas[i % 3]!, KEYS.free, "cheap"));
        }
        expect(during.map((a) => [a.status, a.code])).toEqual(
          Array(9).fill([503, "budget_unavailable"]),
        );
        expect(freeDuring.every((a) => a.status === 200)).toBe(true);
      } finally {
        await postgres.start();
      }
      for (const r of replicas)
        expect(await eventually(async () => (await gauge(r, "imagegate_database_up")) === 1)).toBe(
          true,
        );
      expect(await eventually(() => journals.every((j) => readdirSync(j).length === 0))).toBe(true);
      // Everything the three answered is in, exactly (free's spend went up by its answers').
      expect(await spent(KEYS.outage)).toBeCloseTo(before.cost, 10);
      expect((await spent(KEYS.free)) - freeBefore).toBeCloseTo(sum(freeDuring), 10);
      expect((await generate(replicas[1]!, KEYS.outage)).status).toBe(200);
      for (const r of replicas) {
        expect(
          r.lines.filter((l) => l.includes("PostgreSQL") && l.includes("is unreachable")),
        ).toHaveLength(1);
        expect(
          r.lines.filter((l) => l.includes("PostgreSQL") && l.includes("is reachable again")),
        ).toHaveLength(1);
      }
    });

    it("replay the journal of a replica killed during a database outage once, when it is started again", async () => {
      const victim = 2;
      await postgres.stop();
      let answers: Answer[] = [];
      const saved = mkdtempSync(join(tmpdir(), "imagegate-saved-journal-"));
      try {
        answers = await Promise.all(
          Array.from({ length: 8 }, () => generate(replicas[victim]!, KEYS.crash)),
        );
        expect(answers.every((a) => a.status === 200)).toBe(true);
        await replicas[victim]!.kill("SIGKILL");
        const left = readdirSync(journals[victim]!);
        expect(left.length).toBeGreaterThan(0);
        // A copy, as a crash between writing the spend and deleting the file would leave it.
        for (const f of left) copyFileSync(join(journals[victim]!, f), join(saved, f));
        await startReplica(victim);
      } finally {
        await postgres.start();
      }
      expect(await eventually(() => readdirSync(journals[victim]!).length === 0)).toBe(true);
      expect(await spent(KEYS.crash)).toBeCloseTo(sum(answers), 10);
      // The same entries once more (the killed process's file, back again): nothing twice.
      await replicas[victim]!.kill("SIGTERM");
      for (const f of readdirSync(saved)) copyFileSync(join(saved, f), join(journals[victim]!, f));
      await startReplica(victim);
      expect(await eventually(() => readdirSync(journals[victim]!).length === 0)).toBe(true);
      expect(await spent(KEYS.crash)).toBeCloseTo(sum(answers), 10);
      // The spend-log rows of the requests answered before the kill came with the journal, once.
      const [logged] = await query<{ n: number; usd: number }>(
        "SELECT count(*)::int AS n, coalesce(sum(spend), 0) AS usd FROM spend_logs WHERE api_key = $1",
        [sha(KEYS.crash)],
      );
      expect(logged!.n).toBe(answers.length);
      expect(logged!.usd).toBeCloseTo(sum(answers), 10);
      expect((await generate(replicas[victim]!, KEYS.outage)).status).toBe(200);
    });

    it("soak: 3,000 requests at concurrency 96 with 30% upstream faults and a Redis restart, each answered once, spend equal to the cost headers", async () => {
      upstream.flaky.faults.push({
        ...openaiFaults.serverError(),
        probability: 0.3,
        times: Number.POSITIVE_INFINITY,
      });
      const total = 3000;
      const attemptsBefore = upstream.flaky.requests.length;
      const faultsBefore = upstream.flaky.faults.applied;
      const answers: Answer[] = [];
      let next = 0;
      let restarted: Promise<void> | undefined;
      await Promise.all(
        Array.from({ length: 96 }, async () => {
          for (let i = next++; i < total; i = next++) {
            if (i === total / 3)
              restarted = (async () => {
                await redis.stop();
                await sleep(500);
                await redis.start();
              })();
            answers.push(await generate(replicas[i % 3]!, KEYS.soak, "soak"));
          }
        }),
      );
      await restarted;
      upstream.flaky.faults.clear();
      expect(answers).toHaveLength(total);
      const served = answers.filter((a) => a.status === 200);
      // Five attempts over three deployments: a request fails only if every one of them did.
      const failed = answers.filter((a) => a.status !== 200);
      expect(failed.every((a) => a.status === 502 || a.status === 503)).toBe(true);
      expect(failed.length).toBeLessThan(total * 0.02);
      // Each answer is one image the upstream made: none made twice, none made unanswered.
      const faulted = upstream.flaky.faults.applied - faultsBefore;
      const attempts = upstream.flaky.requests.length - attemptsBefore;
      expect(faulted / attempts).toBeGreaterThan(0.2);
      expect(attempts - faulted).toBe(served.length);
      expect(await eventually(async () => close(await spent(KEYS.soak), sum(served)), 400)).toBe(
        true,
      );
      // One spend-log row per request (the writers flush each second): none twice, none lost.
      expect(
        await eventually(async () => {
          const [row] = await query<{ n: number; usd: number }>(
            "SELECT count(*)::int AS n, coalesce(sum(spend), 0) AS usd FROM spend_logs WHERE api_key = $1",
            [sha(KEYS.soak)],
          );
          return row!.n === total && close(row!.usd, sum(served));
        }, 400),
      ).toBe(true);
    }, 180_000);
  },
);

/** The key's spend once nothing more is on its way (stable over a few flush intervals). */
async function spentAfterFlush(key: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const now = await spent(key);
    if (now === last) return now;
    last = now;
    await sleep(400);
  }
  return last;
}
