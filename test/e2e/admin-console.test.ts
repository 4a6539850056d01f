/**
 * The management API's read-only routes the console draws from, end to end on SQLite and
 * a real PostgreSQL: `/global/spend/series` (requests, images, errors and spend per hour or
 * day, in total, by model and by key, summed by the database) and `/model/stats` (each
 * deployment's rotation, cooldown, in-flight count, latency percentiles and error rate from
 * the router), over REST, Connect and grpc-js, after real requests to the OpenAI emulator
 * (one failing, one cooling its deployment down). And the open gateway's rule: with no key
 * configured, the read-only routes answer without a key and every change is refused.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openaiFaults } from "@imagegate/emulators/openai";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdminService,
  type GetModelStatsRequestSchema,
  type GetModelStatsResponseSchema,
  type GetSpendSeriesRequestSchema,
  type GetSpendSeriesResponseSchema,
} from "../../src/gen/imagegate/admin/v1/admin_pb.js";
import { grpcClient } from "../support/grpc.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";
import { type Stack, startStack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-console-api-test-77c2";

const MODELS = `
model_list:
  - model_name: image-hq
    params:
      model: openai/dall-e-3
      api_key: os.environ/OPENAI_API_KEY
    model_info:
      id: hq-1
  - model_name: image-mini
    params:
      model: openai/gpt-image-1
      api_key: os.environ/OPENAI_API_KEY
    model_info:
      id: mini-1
  - model_name: image-two
    params:
      model: openai/dall-e-2
      api_key: os.environ/OPENAI_API_KEY
    model_info:
      id: two-1
router_settings:
  num_retries: 0
  allowed_fails: 1000
`;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field
type Json = any;

async function call(url: string, path: string, key: string | null = MASTER_KEY, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function generate(url: string, key: string | null, model: string) {
  const res = await fetch(`${url}/v1/images/generations`, {
    method: "POST",
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      "content-type": "application/json",
    },
    body: JSON.stringify({ prompt: "a lighthouse", model }),
  });
  await res.arrayBuffer();
  return { status: res.status, cost: Number(res.headers.get("x-imagegate-cost-usd") ?? 0) };
}

const today = () => new Date().toISOString().slice(0, 10);

function suite(name: string, database: () => string) {
  describe(name, () => {
    let stack: Stack;
    let teamKey = "";
    let teamToken = "";
    const costs = { hq: 0, team: 0 };
    beforeAll(async () => {
      stack = await startStack({
        yaml: `${MODELS}general_settings:\n  master_key: os.environ/IMAGEGATE_MASTER_KEY\n  ${database()}\n`,
        env: { IMAGEGATE_MASTER_KEY: MASTER_KEY },
      });
      const made = await call(stack.url, "/key/generate", MASTER_KEY, { key_alias: "team-a" });
      teamKey = made.body.key;
      teamToken = made.body.token;
      // Two answered on image-hq (one by the team's key), one failing on image-mini, and a
      // 429 with retry-after that takes image-two's deployment out of rotation for a minute.
      // The two answers take at least 5 ms each: latency is kept in whole milliseconds, and
      // an emulator answer under 1 ms read 0 (the p50 check below failed so, now and then).
      stack.openai.faults.push({ ...openaiFaults.latency(5), model: "dall-e-3", times: 2 });
      costs.hq = (await generate(stack.url, MASTER_KEY, "image-hq")).cost;
      const team = await generate(stack.url, teamKey, "image-hq");
      expect(team.status).toBe(200);
      expect(stack.openai.faults.size).toBe(0); // both answers were delayed
      costs.team = team.cost;
      stack.openai.faults.push({ ...openaiFaults.serverError(), model: "gpt-image-1" });
      expect((await generate(stack.url, MASTER_KEY, "image-mini")).status).toBe(502);
      stack.openai.faults.push({ ...openaiFaults.rateLimit(60), model: "dall-e-2" });
      expect((await generate(stack.url, MASTER_KEY, "image-two")).status).toBe(429);
    }, 60_000);
    afterAll(async () => {
      await stack?.close();
    });

    it("/global/spend/series sums requests, images, errors and spend per bucket, in total", async () => {
      const hour = new Date();
      hour.setUTCMinutes(0, 0, 0);
      const { status, body } = await call(
        stack.url,
        `/global/spend/series?start_date=${today()}&end_date=${today()}&bucket=hour`,
      );
      expect(status).toBe(200);
      expect(body.bucket).toBe("hour");
      // Every request of this test started within this hour, or (rarely) the next one.
      const points = body.points as Json[];
      expect(points.length).toBeGreaterThanOrEqual(1);
      for (const p of points) {
        expect(Date.parse(p.start) % 3_600_000).toBe(0);
        expect(p.group).toBeUndefined();
      }
      const sum = (f: string) => points.reduce((a, p) => a + p[f], 0);
      expect(sum("requests")).toBe(4);
      expect(sum("images")).toBe(2);
      expect(sum("errors")).toBe(2);
      expect(sum("spend")).toBeCloseTo(costs.hq + costs.team, 12);
      expect(Date.parse(points[0].start)).toBeGreaterThanOrEqual(hour.getTime() - 3_600_000);

      // By day (the default bucket), the totals equal the spend report's.
      const days = await call(stack.url, "/global/spend/series");
      expect(days.body.bucket).toBe("day");
      const report = await call(stack.url, "/global/spend/report?group_by=day");
      expect(
        days.body.points.map((p: Json) => [p.start.slice(0, 10), p.requests, p.images]),
      ).toEqual(report.body.map((g: Json) => [g.group, g.requests, g.images]).reverse());
    });

    it("/global/spend/series by model and by key names each group, with the key's alias", async () => {
      const byModel = await call(stack.url, "/global/spend/series?group_by=model");
      const models = Object.fromEntries(
        (byModel.body.points as Json[]).map((p) => [p.group, [p.requests, p.images, p.errors]]),
      );
      expect(models).toEqual({
        "image-hq": [2, 2, 0],
        "image-mini": [1, 0, 1],
        "image-two": [1, 0, 1],
      });

      const byKey = await call(stack.url, "/global/spend/series?group_by=api_key");
      const team = (byKey.body.points as Json[]).filter((p) => p.group === teamToken);
      expect(team).toHaveLength(1);
      expect(team[0]).toMatchObject({ key_alias: "team-a", requests: 1, images: 1, errors: 0 });
      expect(team[0].spend).toBeCloseTo(costs.team, 12);
    });

    it("/global/spend/series refuses an unknown bucket, group or date with a 400 naming it", async () => {
      const cases: [string, string][] = [
        ["bucket=week", "bucket"],
        ["group_by=provider", "group_by"],
        ["start_date=2026-13-01&end_date=2026-12-01", "start_date"],
        ["start_date=2026-12-01", "end_date"],
      ];
      for (const [query, param] of cases) {
        const { status, body } = await call(stack.url, `/global/spend/series?${query}`);
        expect(status, query).toBe(400);
        expect(body.error).toMatchObject({ type: "invalid_request_error", param });
        expect(body.error.message).toContain(`'${param}'`);
      }
    });

    it("/spend/logs filters by status and keeps the newest `limit` rows; bad values are 400s naming them", async () => {
      const failed = await call(stack.url, "/spend/logs?status=failure");
      expect(failed.status).toBe(200);
      expect((failed.body as Json[]).map((r) => [r.model, r.status])).toEqual([
        ["image-two", "failure"],
        ["image-mini", "failure"],
      ]);
      // Each row names its attempts: the deployment tried, and the error of a failed one.
      expect((failed.body as Json[]).map((r) => r.attempt_log)).toEqual([
        [{ deployment: "two-1", error: expect.stringMatching(/rate_limit/) }],
        [{ deployment: "mini-1", error: expect.any(String) }],
      ]);
      const all = await call(stack.url, "/spend/logs?status=success");
      expect(all.body).toHaveLength(2);
      for (const row of all.body as Json[])
        expect(row.attempt_log).toEqual([{ deployment: "hq-1" }]);
      const newest = await call(stack.url, "/spend/logs?status=success&limit=1");
      expect(newest.body).toEqual([all.body[0]]);
      const both = await call(stack.url, `/spend/logs?api_key=${teamToken}&status=success&limit=5`);
      expect((both.body as Json[]).map((r) => r.key_alias)).toEqual(["team-a"]);
      for (const [q, param] of [
        ["status=failed", "status"],
        ["limit=0", "limit"],
      ]) {
        const bad = await call(stack.url, `/spend/logs?${q}`);
        expect(bad.status, q).toBe(400);
        expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param });
      }
    });

    it("/model/stats shows each deployment's rotation, cooldown, in-flight, latency and error rate", async () => {
      const { status, body } = await call(stack.url, "/model/stats");
      expect(status).toBe(200);
      expect(body.window_seconds).toBe(300);
      const byId = Object.fromEntries((body.data as Json[]).map((d) => [d.id, d]));
      expect(Object.keys(byId)).toEqual(["hq-1", "mini-1", "two-1"]);
      expect(byId["hq-1"]).toMatchObject({
        model_name: "image-hq",
        provider: "openai",
        model: "dall-e-3",
        in_rotation: true,
        in_flight: 0,
        attempts: 2,
        failures: 0,
        error_rate: 0,
      });
      expect(byId["hq-1"].cooldown_until).toBeUndefined();
      expect(byId["hq-1"].latency_p50_ms).toBeGreaterThan(0);
      expect(byId["hq-1"].latency_p95_ms).toBeGreaterThanOrEqual(byId["hq-1"].latency_p50_ms);
      // A 500 counts as an error but, under allowed_fails, does not cool the deployment.
      expect(byId["mini-1"]).toMatchObject({
        in_rotation: true,
        attempts: 1,
        failures: 1,
        error_rate: 1,
      });
      expect(byId["mini-1"].latency_p50_ms).toBeUndefined();
      // The 429's retry-after (60 s) took it out of rotation until then.
      const two = byId["two-1"];
      expect(two).toMatchObject({ in_rotation: false, failures: 1 });
      const until = Date.parse(two.cooldown_until) - Date.now();
      expect(until).toBeGreaterThan(50_000);
      expect(until).toBeLessThanOrEqual(60_000);

      // /model/info agrees on rotation.
      const info = await call(stack.url, "/model/info");
      expect(
        (info.body.data as Json[]).map((d) => [d.model_info.id, d.model_info.in_rotation]),
      ).toEqual([
        ["hq-1", true],
        ["mini-1", true],
        ["two-1", false],
      ]);
    });

    it("only the master key may read them: no key 401, another key 403", async () => {
      for (const path of ["/model/stats", "/global/spend/series"]) {
        expect((await call(stack.url, path, null)).status).toBe(401);
        const other = await call(stack.url, path, teamKey);
        expect(other.status).toBe(403);
        expect(other.body.error.code).toBe("not_master_key");
      }
    });

    it("the same over Connect and grpc-js", async () => {
      const auth = { authorization: `Bearer ${MASTER_KEY}` };
      const connect = createClient(
        AdminService,
        createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
      );
      const series = await connect.getSpendSeries({ groupBy: "model" }, { headers: auth });
      expect(series.bucket).toBe("day");
      expect(series.points.map((p) => p.group).toSorted()).toEqual([
        "image-hq",
        "image-mini",
        "image-two",
      ]);
      const stats = await connect.getModelStats({}, { headers: auth });
      expect(stats.data.find((d) => d.id === "two-1")?.inRotation).toBe(false);

      const g = grpcClient(AdminService, `127.0.0.1:${stack.gateway.port}`);
      try {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${MASTER_KEY}`);
        const hourly = await g.unary<
          typeof GetSpendSeriesRequestSchema,
          typeof GetSpendSeriesResponseSchema
        >("getSpendSeries", { bucket: "hour", groupBy: "api_key" }, md);
        expect(hourly.response.points.find((p) => p.group === teamToken)?.keyAlias).toBe("team-a");
        const { response } = await g.unary<
          typeof GetModelStatsRequestSchema,
          typeof GetModelStatsResponseSchema
        >("getModelStats", {}, md);
        expect(response.data.find((d) => d.id === "hq-1")?.attempts).toBe(2);
        const refused = await g
          .unary<typeof GetSpendSeriesRequestSchema, typeof GetSpendSeriesResponseSchema>(
            "getSpendSeries",
            { bucket: "week" },
            md,
          )
          .then(
            () => "ok",
            (e: grpc.ServiceError) => e.code,
          );
        expect(refused).toBe(grpc.status.INVALID_ARGUMENT);
      } finally {
        g.close();
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "imagegate-admin-console-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
suite("on SQLite", () => `spend_db: ${join(dir, "console.sqlite")}`);

describe.skipIf(!postgresBin())("with PostgreSQL", () => {
  let pg: Postgres | undefined;
  let url = "";
  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
  }, 60_000);
  afterAll(async () => {
    await pg?.close();
  });
  suite("on PostgreSQL", () => `database_url: ${url}`);
});

describe("on an open gateway (no key configured, as npm run dev)", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      yaml: `${MODELS}general_settings:\n  spend_db: ${join(dir, "open.sqlite")}\n`,
    });
    expect((await generate(stack.url, null, "image-hq")).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it("answers the read-only routes without a key, from the spend_db it was given", async () => {
    const series = await call(stack.url, "/global/spend/series?group_by=model", null);
    expect(series.status).toBe(200);
    expect(series.body.points).toMatchObject([{ group: "image-hq", requests: 1, images: 1 }]);
    const logs = await call(stack.url, "/spend/logs", null);
    expect(logs.body).toMatchObject([{ model: "image-hq", status: "success", images: 1 }]);
    for (const path of ["/model/stats", "/model/info", "/key/list", "/global/spend/report"])
      expect((await call(stack.url, path, null)).status, path).toBe(200);
    // Over Connect too, with no header at all.
    const connect = createClient(
      AdminService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
    );
    expect((await connect.getModelStats({})).data.map((d) => d.id)).toEqual([
      "hq-1",
      "mini-1",
      "two-1",
    ]);
  });

  it("refuses every change: the management API's writes need a master key", async () => {
    for (const [path, body] of [
      ["/key/generate", {}],
      ["/key/block", { key: "sk-anything" }],
      ["/key/delete", { keys: ["sk-anything"] }],
    ] as const) {
      const { status, body: answer } = await call(stack.url, path, null, body);
      expect(status, path).toBe(403);
      expect(answer.error.code).toBe("admin_disabled");
    }
  });
});
