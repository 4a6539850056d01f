/**
 * Budgets over the real server: concurrent requests cannot spend past `max_budget` (each
 * holds its most before the upstream call), holds come back on failure and client abort,
 * a budgeted key cannot use a model without a price, and spend is kept by key id (with
 * files from before, kept by name, carried over).
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";
import { renderPng } from "@imagegate/emulators/png";
import { type Stack, startStack } from "../support/stack.ts";

const KEY = "sk-budgeted-0123456789abcdef";
const FREE_KEY = "sk-unbudgeted-0123456789abcdef";
const sha = (k: string) => createHash("sha256").update(k).digest("hex");
const DALLE2_256 = 0.016;

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

function spendFile(): string {
  return join(mkdtempSync(join(tmpdir(), "imagegate-budget-")), "spend.sqlite");
}

function yaml(spendDb: string, maxBudget: number, extra = ""): string {
  return `general_settings:
  spend_db: ${spendDb}
keys:
  - key: ${KEY}
    name: team
    max_budget: ${maxBudget}
  - key: ${FREE_KEY}
    name: free
model_list:
  - model_name: cheap
    params:
      model: openai/dall-e-2
${extra}`;
}

interface Answer {
  status: number;
  code: string | undefined;
  message: string | undefined;
  cost: number | undefined;
}

async function generate(key: string, body: object, signal?: AbortSignal): Promise<Answer> {
  const res = await fetch(`${stack!.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: "a fox", response_format: "b64_json", ...body }),
    signal,
  });
  const json = (await res.json()) as { error?: { code?: string; message?: string } };
  const cost = res.headers.get("x-imagegate-cost-usd");
  return {
    status: res.status,
    code: json.error?.code,
    message: json.error?.message,
    cost: cost === null ? undefined : Number(cost),
  };
}

/** The spend recorded in the file for `key`, read after the gateway closed it. */
async function recordedSpend(file: string, key: string): Promise<number> {
  const ledger = new SqliteLedger(file);
  try {
    return await ledger.spent(sha(key));
  } finally {
    await ledger.close();
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe("a budget raced by concurrent requests", () => {
  for (const [n, budget] of [
    [1, 0.05],
    [10, 1],
  ] as const) {
    it(`50 requests of n=${n} against $${budget}: spend stays within the budget plus one request, and matches what was served`, async () => {
      const file = spendFile();
      stack = await startStack({ yaml: yaml(file, budget) });
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => generate(KEY, { model: "cheap", size: "256x256", n })),
      );
      const served = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status === 429 && a.code === "budget_exceeded");
      expect(served.length + refused.length).toBe(50);
      expect(served.length).toBeGreaterThan(0);
      for (const a of served) expect(a.cost).toBeCloseTo(n * DALLE2_256, 10);
      // Only served requests reached the upstream: refused ones were stopped before the call.
      expect(stack.openai.requests).toHaveLength(served.length);
      await stack.close();
      stack = undefined;
      const spent = await recordedSpend(file, KEY);
      expect(spent).toBeCloseTo(sum(served.map((a) => a.cost!)), 10);
      expect(spent).toBeLessThanOrEqual(budget + n * DALLE2_256 + 1e-9);
    });
  }
});

describe("holds", () => {
  it("come back when the upstream fails", async () => {
    const file = spendFile();
    // $0.02 holds one $0.016 request at a time.
    stack = await startStack({ yaml: yaml(file, 0.02, "router_settings:\n  num_retries: 0\n") });
    stack.openai.faults.push({
      status: 500,
      body: { error: { message: "boom", type: "server_error", param: null, code: null } },
    });
    const failed = await generate(KEY, { model: "cheap", size: "256x256" });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const ok = await generate(KEY, { model: "cheap", size: "256x256" });
    expect(ok.status).toBe(200);
    await stack.close();
    stack = undefined;
    expect(await recordedSpend(file, KEY)).toBeCloseTo(DALLE2_256, 10);
  });

  it("come back when the client goes away mid-call", async () => {
    const file = spendFile();
    stack = await startStack({ yaml: yaml(file, 0.02) });
    stack.openai.faults.push({ hang: true });
    const abort = new AbortController();
    const pending = generate(KEY, { model: "cheap", size: "256x256" }, abort.signal).catch(
      (e) => e,
    );
    for (let i = 0; i < 200 && stack.openai.requests.length === 0; i++) await sleep(10);
    expect(stack.openai.requests).toHaveLength(1);
    // While the first request holds $0.016, a second one does not fit.
    const meanwhile = await generate(KEY, { model: "cheap", size: "256x256" });
    expect(meanwhile).toMatchObject({ status: 429, code: "budget_exceeded" });
    abort.abort();
    expect(await pending).toBeInstanceOf(Error);
    let after: Answer | undefined;
    for (let i = 0; i < 100; i++) {
      after = await generate(KEY, { model: "cheap", size: "256x256" });
      if (after.status === 200) break;
      await sleep(20);
    }
    expect(after?.status).toBe(200);
  });
});

describe("models without a price", () => {
  const models = `  - model_name: new
    params:
      model: openai/gpt-image-2
  - model_name: new-priced
    params:
      model: openai/gpt-image-2
    model_info:
      output_cost_per_image: 0.05
  - model_name: with-fallback
    params:
      model: openai/dall-e-2
router_settings:
  fallbacks: [{ with-fallback: [new] }]
`;

  it("are a 400 naming the model for a budgeted key, before any upstream call", async () => {
    stack = await startStack({ yaml: yaml(spendFile(), 1, models) });
    const refused = await generate(KEY, { model: "new", size: "1024x1024" });
    expect(refused).toMatchObject({ status: 400, code: "model_not_priced", cost: 0 });
    expect(refused.message).toContain("The model 'new'");
    expect(refused.message).toContain("openai/gpt-image-2");
    expect(refused.message).toContain("has a budget");
    // A fallback the request may reach counts too.
    const viaFallback = await generate(KEY, { model: "with-fallback", size: "256x256" });
    expect(viaFallback).toMatchObject({ status: 400, code: "model_not_priced" });
    expect(viaFallback.message).toContain("'new' (a fallback of 'with-fallback')");
    expect(stack.openai.requests).toHaveLength(0);
  });

  it("are served to a budgeted key at the operator's price, and to a key without a budget", async () => {
    const file = spendFile();
    stack = await startStack({ yaml: yaml(file, 1, models) });
    const priced = await generate(KEY, { model: "new-priced", size: "1024x1024" });
    expect(priced).toMatchObject({ status: 200, cost: 0.05 });
    const free = await generate(FREE_KEY, { model: "new", size: "1024x1024" });
    expect(free).toMatchObject({ status: 200, cost: undefined });
    await stack.close();
    stack = undefined;
    expect(await recordedSpend(file, KEY)).toBeCloseTo(0.05, 10);
  });
});

describe("a produced size the price list lacks", () => {
  it("costs the model's highest price, for every key", async () => {
    stack = await startStack({
      yaml: "model_list:\n  - model_name: cheap\n    params:\n      model: openai/dall-e-2\n",
    });
    stack.openai.faults.push({
      body: {
        created: 1,
        data: [{ b64_json: renderPng(300, 200, "odd").toString("base64") }],
        size: "300x200",
      },
    });
    const res = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a fox", model: "cheap", size: "256x256" }),
    });
    expect(res.status).toBe(200);
    // dall-e-2's dearest listed image (1024x1024), not nothing.
    expect(res.headers.get("x-imagegate-cost-usd")).toBe("0.02");
  });
});

describe("spend kept by key id", () => {
  it("follows the key when it is renamed, and is not inherited by another key given the old name", async () => {
    const file = spendFile();
    stack = await startStack({ yaml: yaml(file, 0.05) });
    expect(await generate(KEY, { model: "cheap", size: "256x256" })).toMatchObject({ status: 200 });
    expect(await generate(KEY, { model: "cheap", size: "256x256" })).toMatchObject({ status: 200 });
    await stack.close();
    // The same key renamed, and a new key under its old name.
    const renamed = yaml(file, 0.05)
      .replace("name: team", "name: team-renamed")
      .replace(
        `key: ${FREE_KEY}\n    name: free`,
        `key: ${FREE_KEY}\n    name: team\n    max_budget: 0.05`,
      );
    stack = await startStack({ yaml: renamed });
    // $0.032 spent: another $0.016 fits, a third does not.
    expect(await generate(KEY, { model: "cheap", size: "256x256" })).toMatchObject({ status: 200 });
    expect(await generate(KEY, { model: "cheap", size: "256x256" })).toMatchObject({
      status: 429,
      code: "budget_exceeded",
    });
    for (let i = 0; i < 3; i++) {
      expect(await generate(FREE_KEY, { model: "cheap", size: "256x256" })).toMatchObject({
        status: 200,
      });
    }
  });

  it("carries spend kept by name (files from before key ids) over to the key of that name", async () => {
    const file = spendFile();
    const old = new DatabaseSync(file);
    old.exec("CREATE TABLE spend (key TEXT PRIMARY KEY, usd REAL NOT NULL)");
    old.prepare("INSERT INTO spend (key, usd) VALUES (?, ?)").run("team", 0.04);
    old.prepare("INSERT INTO spend (key, usd) VALUES (?, ?)").run("gone", 1.5);
    old.close();
    stack = await startStack({ yaml: yaml(file, 0.05) });
    // $0.04 of $0.05 spent: a $0.016 request no longer fits.
    const refused = await generate(KEY, { model: "cheap", size: "256x256" });
    expect(refused).toMatchObject({ status: 429, code: "budget_exceeded" });
    expect(refused.message).toContain("$0.0400");
    await stack.close();
    stack = undefined;
    expect(await recordedSpend(file, KEY)).toBeCloseTo(0.04, 10);
    // A name no configured key has keeps its row, and nothing was counted twice.
    const db = new DatabaseSync(file);
    expect(db.prepare("SELECT key, usd FROM spend").all()).toEqual([{ key: "gone", usd: 1.5 }]);
    db.close();
    stack = await startStack({ yaml: yaml(file, 0.05) });
    await stack.close();
    stack = undefined;
    expect(await recordedSpend(file, KEY)).toBeCloseTo(0.04, 10);
  });
});
