/**
 * The spend log keeps each request's upstream attempts in order (`attempt_log`): the
 * deployment tried and, for one that failed, its error; a request retried onto another
 * deployment shows both, as `/spend/logs` and AdminService answer them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openaiFaults } from "@imagegate/emulators/openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-attempt-log-2c9e";
const dir = mkdtempSync(join(tmpdir(), "imagegate-attempt-log-"));

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    yaml: `
model_list:
  - model_name: image
    params: { model: openai/dall-e-2, api_key: os.environ/OPENAI_API_KEY }
    model_info: { id: first }
  - model_name: image
    params: { model: openai/dall-e-2, api_key: os.environ/OPENAI_API_KEY }
    model_info: { id: second }
router_settings:
  num_retries: 1
  allowed_fails: 1000
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
  spend_db: ${join(dir, "spend.sqlite")}
`,
    env: { IMAGEGATE_MASTER_KEY: MASTER_KEY },
  });
});
afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

const headers = { authorization: `Bearer ${MASTER_KEY}`, "content-type": "application/json" };

describe("attempt_log", () => {
  it("names each attempt in order: the failed one with its error, then the one that answered", async () => {
    stack.openai.faults.push(openaiFaults.serverError());
    const res = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "a lighthouse", model: "image", size: "256x256" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-imagegate-attempts")).toBe("2");
    const requestId = res.headers.get("x-request-id")!;
    const logs = await (
      await fetch(`${stack.url}/spend/logs?request_id=${requestId}`, { headers })
    ).json();
    expect(logs).toHaveLength(1);
    const [failed, answered] = logs[0].attempt_log;
    expect(logs[0].attempts).toBe(2);
    expect(failed).toEqual({ deployment: expect.any(String), error: expect.any(String) });
    expect(failed.error).not.toBe("");
    expect(answered).toEqual({ deployment: logs[0].model_id });
    expect(new Set([failed.deployment, answered.deployment])).toEqual(new Set(["first", "second"]));
  });

  it("a request refused before any upstream call has none", async () => {
    const res = await fetch(`${stack.url}/v1/images/generations`, {
      method: "POST",
      headers,
      body: JSON.stringify({ prompt: "a lighthouse", model: "image", size: "123x456" }),
    });
    expect(res.status).toBe(400);
    const requestId = res.headers.get("x-request-id")!;
    const logs = await (
      await fetch(`${stack.url}/spend/logs?request_id=${requestId}`, { headers })
    ).json();
    expect(logs).toMatchObject([{ status: "failure", attempts: 0, attempt_log: [] }]);
  });
});
