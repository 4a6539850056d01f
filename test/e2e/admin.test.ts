/**
 * The management API (imagegate.admin.v1.AdminService) end to end, on SQLite and on a real
 * PostgreSQL: LiteLLM's routes over plain HTTP, the same operations over Connect and
 * grpc-js, a key's whole life with real image requests against the OpenAI emulator, every
 * error shape, the spend log and reports, `/model/info` without secrets, and keys and
 * spend surviving a restart.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdminService,
  type GenerateKeyRequestSchema,
  type GenerateKeyResponseSchema,
  type GetKeyInfoRequestSchema,
  type GetKeyInfoResponseSchema,
  type RegenerateKeyRequestSchema,
} from "../../src/gen/imagegate/admin/v1/admin_pb.js";
import { SpendLogWriter } from "../../src/db/spend-log.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import type { Logger } from "../../src/log/logger.ts";
import { grpcClient } from "../support/grpc.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";
import { EMULATOR_KEY, type Stack, startStack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-admin-test-5a0c1e";
const CONFIG_KEY = "sk-config-team-admin-test-9b77";
const CONFIG_TOKEN = sha256(CONFIG_KEY);

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function yaml(database: string): string {
  return `
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
  - model_name: image-elsewhere
    params:
      model: openai/gpt-image-1
      api_key: sk-inline-upstream-secret-31f
      api_base: http://user:pa55-in-url@127.0.0.1:9/v1
router_settings:
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
  ${database}
keys:
  - key: os.environ/CONFIG_KEY
    name: team-config
    models: [image-hq]
`;
}

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** Keeps every line the gateway logs, as the JSON logger would write it. */
function memoryLogger(lines: LogLine[]): Logger {
  return { log: (level, msg, fields = {}) => lines.push({ level, msg, fields }) };
}

const today = () => new Date().toISOString().slice(0, 10);

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are checked field by field
  body: any;
  headers: Headers;
}

function suite(name: string, database: () => string) {
  describe(name, () => {
    let stack: Stack;
    const logs: LogLine[] = [];
    const start = async () =>
      startStack({
        yaml: yaml(database()),
        env: { IMAGEGATE_MASTER_KEY: MASTER_KEY, CONFIG_KEY },
        logger: memoryLogger(logs),
      });
    beforeAll(async () => {
      stack = await start();
    }, 60_000);
    afterAll(async () => {
      await stack?.close();
    });

    const call = async (
      method: "GET" | "POST",
      path: string,
      body?: unknown,
      key: string | null = MASTER_KEY,
    ): Promise<Answer> => {
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers: {
          ...(key === null ? {} : { authorization: `Bearer ${key}` }),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return {
        status: res.status,
        body: text === "" ? undefined : JSON.parse(text),
        headers: res.headers,
      };
    };
    const post = (path: string, body: unknown, key?: string) => call("POST", path, body, key);
    const get = (path: string, key?: string) => call("GET", path, undefined, key);

    /** An image request with `key`; the cost header when answered, else the status. */
    const generate = async (key: string, model: string, user?: string) => {
      const res = await fetch(`${stack.url}/v1/images/generations`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ prompt: "a lighthouse", model, ...(user ? { user } : {}) }),
      });
      const body = await res.json();
      return {
        status: res.status,
        cost: Number(res.headers.get("x-imagegate-cost-usd")),
        requestId: res.headers.get("x-request-id")!,
        error: body.error,
      };
    };

    it("a key's whole life: generate, use, update, spend, regenerate, block, unblock, delete", async () => {
      const made = await post("/key/generate", {
        key_alias: "team-life",
        models: ["image-hq"],
        max_budget: 5,
        metadata: { team: "life" },
      });
      expect(made.status).toBe(200);
      const key: string = made.body.key;
      expect(key).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
      expect(made.body).toEqual({
        key,
        token: sha256(key),
        key_alias: "team-life",
        models: ["image-hq"],
        max_budget: 5,
      });
      const token = made.body.token as string;

      // Use: its model works, another is 403.
      const first = await generate(key, "image-hq", "end-user-7");
      expect(first.status).toBe(200);
      expect(first.cost).toBeGreaterThan(0);
      expect((await generate(key, "image-mini")).status).toBe(403);

      // Update its models: now the other works too.
      const updated = await post("/key/update", { key, models: ["image-hq", "image-mini"] });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ token, models: ["image-hq", "image-mini"] });
      const second = await generate(key, "image-mini");
      expect(second.status).toBe(200);

      // Spend grows by exactly the cost headers (the refused request cost nothing).
      const info = await get(`/key/info?key=${encodeURIComponent(key)}`);
      expect(info.status).toBe(200);
      expect(info.body.key).toBe(token);
      expect(info.body.info).toMatchObject({
        key_alias: "team-life",
        max_budget: 5,
        models: ["image-hq", "image-mini"],
        blocked: false,
        source: "api",
        metadata: { team: "life" },
      });
      expect(info.body.info.spend).toBeCloseTo(first.cost + second.cost, 12);
      expect(Date.parse(info.body.info.created_at)).toBeGreaterThan(Date.now() - 60_000);
      // The token names it as well as the key.
      expect((await get(`/key/info?key=${token}`)).body).toEqual(info.body);

      // Regenerate: the old key is refused at once, the new one has the settings and spend.
      const again = await post("/key/regenerate", { key: token });
      expect(again.status).toBe(200);
      const newKey: string = again.body.key;
      expect(newKey).not.toBe(key);
      expect(again.body.token).toBe(sha256(newKey));
      expect(again.body.models).toEqual(["image-hq", "image-mini"]);
      const old = await generate(key, "image-hq");
      expect(old.status).toBe(401);
      expect((await generate(newKey, "image-hq")).status).toBe(200);
      const moved = await get(`/key/info?key=${again.body.token}`);
      expect(moved.body.info.spend).toBeGreaterThan(first.cost + second.cost);
      expect((await get(`/key/info?key=${token}`)).status).toBe(404);

      // Block: 401 naming why; unblock: served again.
      const blocked = await post("/key/block", { key: newKey });
      expect(blocked.status).toBe(200);
      expect(blocked.body).toMatchObject({ token: sha256(newKey), blocked: true });
      const refused = await generate(newKey, "image-hq");
      expect(refused.status).toBe(401);
      expect(refused.error).toMatchObject({
        type: "authentication_error",
        code: "key_blocked",
        message: "Key 'team-life' is blocked.",
      });
      expect((await post("/key/unblock", { key: newKey })).body.blocked).toBe(false);
      expect((await generate(newKey, "image-hq")).status).toBe(200);

      // Delete: gone from the list, refused, unknown to /key/info.
      const deleted = await post("/key/delete", { keys: [newKey] });
      expect(deleted.body).toEqual({ deleted_keys: [sha256(newKey)] });
      expect((await generate(newKey, "image-hq")).status).toBe(401);
      expect((await get(`/key/info?key=${sha256(newKey)}`)).status).toBe(404);
      expect((await get("/key/list")).body.keys).not.toContain(sha256(newKey));

      // Each change is an audit record naming who and which key, never the key.
      const audit = logs.filter((l) => l.fields.audit === true);
      expect(audit.map((l) => l.fields.action)).toEqual(
        expect.arrayContaining([
          "key.generate",
          "key.update",
          "key.regenerate",
          "key.block",
          "key.unblock",
          "key.delete",
        ]),
      );
      for (const l of audit) expect(l.fields.who).toBe("master");
      expect(audit.find((l) => l.fields.action === "key.generate")?.fields.token).toBe(token);
      const all = JSON.stringify(logs);
      expect(all).not.toContain(key);
      expect(all).not.toContain(newKey);
      expect(all).not.toContain(MASTER_KEY);
    });

    it("lists the config's keys with source config, and refuses to change them (403)", async () => {
      const list = await get("/key/list");
      expect(list.status).toBe(200);
      expect(list.body.keys).toContain(CONFIG_TOKEN);
      const info = await get(`/key/info?key=${CONFIG_KEY}`);
      expect(info.body).toMatchObject({
        key: CONFIG_TOKEN,
        info: { key_alias: "team-config", source: "config", models: ["image-hq"] },
      });
      for (const [path, body] of [
        ["/key/update", { key: CONFIG_KEY, max_budget: 1 }],
        ["/key/block", { key: CONFIG_TOKEN }],
        ["/key/regenerate", { key: CONFIG_KEY }],
        ["/key/delete", { keys: [CONFIG_KEY] }],
      ] as const) {
        const res = await post(path, body);
        expect(res.status, path).toBe(403);
        expect(res.body.error).toMatchObject({
          type: "permission_error",
          code: "config_key_read_only",
        });
      }
      expect((await generate(CONFIG_KEY, "image-hq")).status).toBe(200);
    });

    it("filters /key/list by alias", async () => {
      const a = await post("/key/generate", { key_alias: "listed-alias" });
      expect((await get("/key/list?key_alias=listed-alias")).body).toEqual({
        keys: [a.body.token],
      });
    });

    it.each([
      ["an unknown field", { key_alias: "x", team_id: "t" }, "team_id"],
      ["a wrong type", { max_budget: "ten" }, "max_budget"],
      ["a negative budget", { max_budget: -1 }, "max_budget"],
      ["a zero rpm limit", { rpm_limit: 0 }, "rpm_limit"],
      ["a bad budget_duration", { budget_duration: "monthly" }, "budget_duration"],
      ["a bad duration", { duration: "10y" }, "duration"],
      ["models not a list", { models: "image-hq" }, "models"],
      ["metadata not an object", { metadata: [1] }, "metadata"],
      ["the master key's name", { key_alias: "master" }, "key_alias"],
    ])("/key/generate with %s is a 400 naming the field", async (_, body, param) => {
      const res = await post("/key/generate", body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: "invalid_request_error", param });
    });

    it("/key/update with wrong types or negative budgets is a 400 naming the field", async () => {
      const { body } = await post("/key/generate", {});
      for (const [change, param] of [
        [{ max_budget: -0.5 }, "max_budget"],
        [{ models: [1] }, "models[0]"],
        [{ models: {} }, "models"],
        [{ blocked: true }, "blocked"],
      ] as const) {
        const res = await post("/key/update", { key: body.key, ...change });
        expect(res.status, JSON.stringify(change)).toBe(400);
        expect(res.body.error.param).toBe(param);
      }
    });

    it.each([
      ["/key/update", { key: "sk-no-such-key", max_budget: 1 }, "key"],
      ["/key/block", { key: "f".repeat(64) }, "key"],
      ["/key/unblock", { key: "sk-no-such-key" }, "key"],
      ["/key/regenerate", { key: "sk-no-such-key" }, "key"],
      ["/key/delete", { keys: ["sk-no-such-key"] }, "keys[0]"],
    ])("%s of an unknown key is a 404", async (path, body, param) => {
      const res = await post(path, body);
      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ code: "key_not_found", param });
    });

    it("/key/info of an unknown key is a 404; without ?key= a 400", async () => {
      expect((await get("/key/info?key=sk-nope")).status).toBe(404);
      const missing = await get("/key/info");
      expect(missing.status).toBe(400);
      expect(missing.body.error.param).toBe("key");
    });

    it("no key is 401, a wrong key 401, any key but the master 403, on every route", async () => {
      const { body: made } = await post("/key/generate", { key_alias: "not-master" });
      const routes: [string, string, unknown][] = [
        ["POST", "/key/generate", {}],
        ["POST", "/key/update", { key: made.token }],
        ["POST", "/key/delete", { keys: [made.token] }],
        ["POST", "/key/regenerate", { key: made.token }],
        ["POST", "/key/block", { key: made.token }],
        ["POST", "/key/unblock", { key: made.token }],
        ["GET", `/key/info?key=${made.token}`, undefined],
        ["GET", "/key/list", undefined],
        ["GET", "/spend/logs", undefined],
        ["GET", "/global/spend/report", undefined],
        ["GET", "/model/info", undefined],
      ];
      for (const [method, path, body] of routes) {
        const m = method as "GET" | "POST";
        expect((await call(m, path, body, null)).status, path).toBe(401);
        expect((await call(m, path, body, "sk-wrong")).status, path).toBe(401);
        const config = await call(m, path, body, CONFIG_KEY);
        expect(config.status, path).toBe(403);
        expect(config.body.error).toMatchObject({
          type: "permission_error",
          code: "not_master_key",
        });
        expect((await call(m, path, body, made.key)).status, path).toBe(403);
      }
      // Nothing happened to the key.
      expect((await get(`/key/info?key=${made.token}`)).body.info.blocked).toBe(false);
    });

    it("a key that expires is refused with 401 once its duration is over", async () => {
      const { body } = await post("/key/generate", { duration: "2s" });
      expect(Date.parse(body.expires)).toBeGreaterThan(Date.now());
      expect(Date.parse(body.expires)).toBeLessThanOrEqual(Date.now() + 2000);
      expect((await generate(body.key, "image-hq")).status).toBe(200);
      await new Promise((r) => setTimeout(r, Date.parse(body.expires) - Date.now() + 50));
      const late = await generate(body.key, "image-hq");
      expect(late.status).toBe(401);
      expect(late.error.code).toBe("key_expired");
    });

    it("a budget_duration starts the budget again each period, and reports when", async () => {
      // dall-e-3 at its default size and quality: $0.04; a $0.05 budget takes one request.
      const { body } = await post("/key/generate", { max_budget: 0.05, budget_duration: "3s" });
      const info = async () => (await get(`/key/info?key=${body.token}`)).body.info;
      const first = await info();
      const resetAt = Date.parse(first.budget_reset_at);
      expect(resetAt).toBeGreaterThan(Date.now());
      expect(resetAt).toBeLessThanOrEqual(Date.now() + 3000);
      expect(first.budget_duration).toBe("3s");

      const used = await generate(body.key, "image-hq");
      expect(used.status).toBe(200);
      expect((await generate(body.key, "image-hq")).status).toBe(429);
      expect((await info()).spend).toBeCloseTo(used.cost, 12);

      // Once the period is over (the job looks every second), the spend is back to 0.
      await new Promise((r) => setTimeout(r, resetAt - Date.now() + 1500));
      const next = await info();
      expect(next.spend).toBe(0);
      // The next period starts where this one ended (whole periods later, under load).
      const nextAt = Date.parse(next.budget_reset_at);
      expect(nextAt).toBeGreaterThan(resetAt);
      expect((nextAt - resetAt) % 3000).toBe(0);
      expect((await generate(body.key, "image-hq")).status).toBe(200);
      expect((await info()).spend).toBeCloseTo(used.cost, 12);
    });

    it("the openai SDK's models.list() with a generated key lists what it may use", async () => {
      const { body } = await post("/key/generate", { models: ["image-mini"] });
      const sdk = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: body.key, maxRetries: 0 });
      const ids: string[] = [];
      for await (const m of sdk.models.list()) ids.push(m.id);
      expect(ids).toEqual(["image-mini"]);
      const all = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
      expect((await all.models.list()).data.map((m) => m.id)).toEqual([
        "image-hq",
        "image-mini",
        "image-elsewhere",
      ]);
    });

    it("the spend log has a row per request, answered or refused, and reports equal its sums", async () => {
      const { body } = await post("/key/generate", { key_alias: "logged" });
      const answered = await generate(body.key, "image-hq", "alice");
      const wrongModel = await generate(body.key, "no-such-model", "bob");
      const refused = await generate("sk-not-a-key", "image-hq");
      expect([answered.status, wrongModel.status, refused.status]).toEqual([200, 404, 401]);

      const rows = await get(
        `/spend/logs?start_date=${today()}&end_date=${today()}&api_key=${body.key}`,
      );
      expect(rows.status).toBe(200);
      expect(Array.isArray(rows.body)).toBe(true);
      const byRequest = new Map(rows.body.map((r: { request_id: string }) => [r.request_id, r]));
      expect(rows.body).toHaveLength(2);
      expect(byRequest.get(answered.requestId)).toMatchObject({
        api_key: body.token,
        key_alias: "logged",
        end_user: "alice",
        model: "image-hq",
        model_id: "hq-1",
        provider: "openai",
        status: "success",
        images: 1,
        attempts: 1,
      });
      expect((byRequest.get(answered.requestId) as { spend: number }).spend).toBeCloseTo(
        answered.cost,
        12,
      );
      expect(byRequest.get(wrongModel.requestId)).toMatchObject({
        status: "failure",
        spend: 0,
        end_user: "bob",
      });
      const refusedRow = await get(`/spend/logs?request_id=${refused.requestId}`);
      expect(refusedRow.body).toEqual([
        expect.objectContaining({ request_id: refused.requestId, status: "failure", spend: 0 }),
      ]);
      expect(refusedRow.body[0].api_key).toBeUndefined();
      expect(
        (await get(`/spend/logs?end_user=alice`)).body.map(
          (r: { request_id: string }) => r.request_id,
        ),
      ).toContain(answered.requestId);

      // Every grouping sums to the log's totals, and each group to its rows.
      const every = (await get(`/spend/logs?start_date=${today()}&end_date=${today()}`)).body as {
        api_key?: string;
        spend: number;
        images: number;
      }[];
      const total = every.reduce((s, r) => s + r.spend, 0);
      for (const groupBy of ["api_key", "model", "provider", "end_user", "day"]) {
        const report = await get(
          `/global/spend/report?start_date=${today()}&end_date=${today()}&group_by=${groupBy}`,
        );
        expect(report.status).toBe(200);
        const groups = report.body as {
          group?: string;
          spend: number;
          requests: number;
          images: number;
        }[];
        expect(groups.reduce((s, g) => s + g.spend, 0)).toBeCloseTo(total, 9);
        expect(groups.reduce((s, g) => s + g.requests, 0)).toBe(every.length);
        expect(groups.reduce((s, g) => s + g.images, 0)).toBe(
          every.reduce((s, r) => s + r.images, 0),
        );
      }
      const byKey = (await get("/global/spend/report?group_by=api_key")).body as {
        group?: string;
        spend: number;
        requests: number;
      }[];
      expect(byKey.find((g) => g.group === body.token)).toMatchObject({ requests: 2 });
      expect(byKey.find((g) => g.group === body.token)!.spend).toBeCloseTo(answered.cost, 12);
      expect((await get(`/global/spend/report?group_by=day`)).body[0].group).toBe(today());
    });

    it.each([
      ["/spend/logs?start_date=2026-13-01&end_date=2026-12-01", "start_date"],
      ["/spend/logs?start_date=2026-12-02&end_date=2026-12-01", "end_date"],
      ["/spend/logs?start_date=2026-12-01", "end_date"],
      ["/spend/logs?limit=0", "limit"],
      ["/spend/logs?status=failed", "status"],
      ["/spend/logs?page=2", "page"],
      ["/global/spend/report?group_by=team", "group_by"],
    ])("GET %s is a 400 naming %s", async (path, param) => {
      const res = await get(path);
      expect(res.status).toBe(400);
      expect(res.body.error.param).toBe(param);
    });

    it("/model/info shows every deployment, its price and rotation, and no secret", async () => {
      const res = await get("/model/info");
      expect(res.status).toBe(200);
      expect(res.body.data).toHaveLength(3);
      expect(res.body.data[0]).toMatchObject({
        model_name: "image-hq",
        litellm_params: { model: "openai/dall-e-3" },
        model_info: {
          id: "hq-1",
          provider: "openai",
          model: "dall-e-3",
          in_rotation: true,
          output_cost_per_image: expect.any(Number),
          price: { provider: "openai", model: "dall-e-3" },
        },
      });
      expect(res.body.data[2].litellm_params).toEqual({
        model: "openai/gpt-image-1",
        api_base: "http://127.0.0.1:9/v1",
      });
      const text = JSON.stringify(res.body);
      for (const secret of [
        EMULATOR_KEY,
        "sk-inline-upstream-secret-31f",
        "pa55-in-url",
        MASTER_KEY,
        CONFIG_KEY,
      ])
        expect(text).not.toContain(secret);
      expect(res.body.data[0].litellm_params.api_key).toBeUndefined();
    });

    it("the same operations over Connect and grpc-js, with their error codes", async () => {
      const auth = { authorization: `Bearer ${MASTER_KEY}` };
      const connect = createClient(
        AdminService,
        createConnectTransport({ baseUrl: stack.url, httpVersion: "1.1" }),
      );
      const made = await connect.generateKey(
        { keyAlias: "over-connect", models: ["image-hq"], maxBudget: 2 },
        { headers: auth },
      );
      expect(made.token).toBe(sha256(made.key));
      const g = grpcClient(AdminService, `127.0.0.1:${stack.gateway.port}`);
      try {
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${MASTER_KEY}`);
        const { response } = await g.unary<
          typeof GetKeyInfoRequestSchema,
          typeof GetKeyInfoResponseSchema
        >("getKeyInfo", { key: made.key }, md);
        expect(response.key).toBe(made.token);
        expect(response.info).toMatchObject({
          keyAlias: "over-connect",
          maxBudget: 2,
          source: "api",
        });
        const again = await g.unary<
          typeof RegenerateKeyRequestSchema,
          typeof GenerateKeyResponseSchema
        >("regenerateKey", { key: made.token }, md);
        expect(again.response.token).toBe(sha256(again.response.key));

        const code = (p: Promise<unknown>) =>
          p.then(
            () => "ok",
            (e: grpc.ServiceError) => e.code,
          );
        expect(
          await code(
            g.unary<typeof GetKeyInfoRequestSchema, typeof GetKeyInfoResponseSchema>(
              "getKeyInfo",
              { key: "sk-nope" },
              md,
            ),
          ),
        ).toBe(grpc.status.NOT_FOUND);
        expect(
          await code(
            g.unary<typeof GenerateKeyRequestSchema, typeof GenerateKeyResponseSchema>(
              "generateKey",
              { maxBudget: -3 },
              md,
            ),
          ),
        ).toBe(grpc.status.INVALID_ARGUMENT);
        expect(await code(g.unary("listKeys", {}))).toBe(grpc.status.UNAUTHENTICATED);
        const other = new grpc.Metadata();
        other.set("authorization", `Bearer ${again.response.key}`);
        expect(await code(g.unary("listKeys", {}, other))).toBe(grpc.status.PERMISSION_DENIED);
      } finally {
        g.close();
      }
      const err = await connect
        .getKeyInfo({ key: "sk-nope" }, { headers: auth })
        .catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.NotFound);
      const logs = await connect.listSpendLogs({ requestId: "none" }, { headers: auth });
      expect(logs.logs).toEqual([]);
      const report = await connect.getSpendReport({ groupBy: "model" }, { headers: auth });
      expect(report.groups.length).toBeGreaterThan(0);
    });

    it("keys and spend survive a restart", async () => {
      const { body } = await post("/key/generate", { key_alias: "lasting", max_budget: 3 });
      const used = await generate(body.key, "image-hq");
      expect(used.status).toBe(200);
      await stack.close();
      stack = await start();
      expect((await generate(body.key, "image-hq")).status).toBe(200);
      const info = await get(`/key/info?key=${body.key}`);
      expect(info.body.info.spend).toBeCloseTo(used.cost * 2, 12);
      expect(info.body.info).toMatchObject({ key_alias: "lasting", max_budget: 3, source: "api" });
      const rows = await get(`/spend/logs?api_key=${body.token}`);
      expect(rows.body).toHaveLength(2);
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "imagegate-admin-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
suite("on SQLite", () => `spend_db: ${join(dir, "admin.sqlite")}`);

describe("spend-log retention", () => {
  it("rows older than general_settings.spend_logs_retention are deleted; newer ones stay", async () => {
    const file = join(dir, "retention.sqlite");
    const db = openSqlite(file);
    const writer = new SpendLogWriter(db);
    const row = (requestId: string, ageMs: number) => ({
      requestId,
      status: "success" as const,
      spend: 0.04,
      images: 1,
      startTime: Date.now() - ageMs,
      endTime: Date.now() - ageMs + 1000,
      attempts: 1,
    });
    writer.write(row("req-old", 3 * 86_400_000));
    writer.write(row("req-recent", 3_600_000));
    await writer.close();
    await db.close();
    const stack = await startStack({
      yaml: yaml(`spend_db: ${file}\n  spend_logs_retention: 2d`),
      env: { IMAGEGATE_MASTER_KEY: MASTER_KEY, CONFIG_KEY },
    });
    try {
      const res = await fetch(`${stack.url}/spend/logs`, {
        headers: { authorization: `Bearer ${MASTER_KEY}` },
      });
      const rows = (await res.json()) as { request_id: string }[];
      expect(rows.map((r) => r.request_id)).toEqual(["req-recent"]);
    } finally {
      await stack.close();
    }
  });
});

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
