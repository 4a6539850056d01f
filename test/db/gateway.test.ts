/**
 * The database under the real gateway: two replicas given one DATABASE_URL share a budget
 * (raced by 40 requests across both, spend never past the budget plus one request), every
 * request is one spend-log row with who asked and what it cost, and the embedded database
 * defaults to the user's data directory.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openPostgres } from "../../src/db/postgres.ts";
import { PostgresLedger } from "../../src/db/postgres-ledger.ts";
import { spendLogs } from "../../src/db/spend-log.ts";
import { openSqlite } from "../../src/db/sqlite.ts";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";
import { type Stack, startStack } from "../support/stack.ts";

const KEY = "sk-budgeted-0123456789abcdef";
const sha = (k: string) => createHash("sha256").update(k).digest("hex");
const DALLE2_256 = 0.016;

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.close();
});

function yaml(maxBudget: number, extra = ""): string {
  return `${extra}keys:
  - key: ${KEY}
    name: team
    max_budget: ${maxBudget}
model_list:
  - model_name: cheap
    params:
      model: openai/dall-e-2
`;
}

async function generate(stack: Stack, body: object = {}) {
  const res = await fetch(`${stack.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({
      prompt: "a fox",
      model: "cheap",
      size: "256x256",
      response_format: "b64_json",
      ...body,
    }),
  });
  await res.arrayBuffer();
  const cost = res.headers.get("x-imagegate-cost-usd");
  return { status: res.status, cost: cost === null ? undefined : Number(cost) };
}

const ALL_TIME = { from: 0, to: Date.now() + 86_400_000 };

describe("the embedded database", () => {
  it("lives in the user's data directory by default, with a row per request", async () => {
    const data = mkdtempSync(join(tmpdir(), "imagegate-xdg-"));
    const stack = await startStack({ yaml: yaml(1), env: { XDG_DATA_HOME: data } });
    stacks.push(stack);
    expect(await generate(stack, { user: "alice" })).toMatchObject({ status: 200 });
    await stack.close();
    stacks.length = 0;
    const file = join(data, "imagegate", "imagegate.sqlite");
    expect(existsSync(file)).toBe(true);
    const database = openSqlite(file);
    try {
      expect(await new SqliteLedger(database).spent(sha(KEY))).toBeCloseTo(DALLE2_256, 10);
      const [row, ...rest] = await spendLogs(database, ALL_TIME);
      expect(rest).toEqual([]);
      expect(row).toMatchObject({
        api_key: sha(KEY),
        key_alias: "team",
        end_user: "alice",
        model: "cheap",
        provider: "openai",
        status: "success",
        spend: DALLE2_256,
        images: 1,
        size: "256x256",
        attempts: 1,
      });
      expect(row!.request_id).toMatch(/^req_/);
    } finally {
      await database.close();
    }
  });
});

describe.skipIf(!postgresBin())("replicas sharing one PostgreSQL (DATABASE_URL)", () => {
  let server: Postgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it("hold one budget across 40 requests racing through two replicas, and log each request", async () => {
    const url = await server.createDatabase();
    const budget = 0.1;
    for (let i = 0; i < 2; i++) {
      stacks.push(await startStack({ yaml: yaml(budget), env: { DATABASE_URL: url } }));
    }
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => generate(stacks[i % 2]!)),
    );
    const served = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(served.length + refused.length).toBe(40);
    expect(served.length).toBeGreaterThan(0);
    for (const s of stacks.splice(0)) await s.close();

    const database = await openPostgres(url);
    const ledger = new PostgresLedger(database);
    try {
      const spent = await ledger.spent(sha(KEY));
      const sum = served.reduce((n, a) => n + a.cost!, 0);
      expect(spent).toBeCloseTo(sum, 10);
      expect(spent).toBeLessThanOrEqual(budget + DALLE2_256 + 1e-9);
      // Shutdown flushed every row: one per request, refused ones as failures.
      const rows = await spendLogs(database, ALL_TIME);
      expect(rows).toHaveLength(40);
      expect(rows.filter((r) => r.status === "success")).toHaveLength(served.length);
      expect(rows.reduce((n, r) => n + r.spend, 0)).toBeCloseTo(spent, 10);
    } finally {
      await ledger.close();
      await database.close();
    }
  });

  it("uses general_settings.database_url over the environment", async () => {
    const url = await server.createDatabase();
    const stack = await startStack({
      yaml: yaml(1, `general_settings:\n  database_url: ${url}\n`),
      env: { DATABASE_URL: "postgresql://nobody@127.0.0.1:1/nothing" },
    });
    stacks.push(stack);
    expect(await generate(stack)).toMatchObject({ status: 200 });
    await stack.close();
    stacks.length = 0;
    const database = await openPostgres(url);
    const ledger = new PostgresLedger(database);
    try {
      expect(await ledger.spent(sha(KEY))).toBeCloseTo(DALLE2_256, 10);
    } finally {
      await ledger.close();
      await database.close();
    }
  });
});
