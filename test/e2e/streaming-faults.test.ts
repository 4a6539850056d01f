/**
 * Streams that go wrong: an upstream failing mid-stream (one `error` event, nothing after
 * it), an upstream failing before its first event (the ordinary JSON error), and a client
 * that goes away mid-stream (the upstream call is cancelled, and what it billed is still
 * charged to the key).
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SqliteLedger } from "../../src/db/sqlite-ledger.ts";
import { type Stack, startStack } from "../support/stack.ts";

const KEY = "sk-stream-budget-0123456789abcdef";
const WAIT = { timeout: 5000, interval: 5 };

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

function yaml(spendDb: string, server = ""): string {
  return `${server}general_settings:
  spend_db: ${spendDb}
keys:
  - key: ${KEY}
    name: team
    max_budget: 100
model_list:
  - model_name: gpt
    params:
      model: openai/gpt-image-1
router_settings:
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
`;
}

async function start(server = ""): Promise<{ stack: Stack; spendDb: string }> {
  const spendDb = join(mkdtempSync(join(tmpdir(), "imagegate-stream-")), "spend.sqlite");
  stack = await startStack({ yaml: yaml(spendDb, server) });
  return { stack, spendDb };
}

const BODY = {
  model: "gpt",
  prompt: "a lighthouse",
  size: "1024x1024",
  quality: "low",
  stream: true,
  partial_images: 2,
};

function post(url: string, body: object, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
    signal,
  });
}

function frames(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text
    .split("\n\n")
    .filter((f) => f !== "")
    .map((f) => {
      const [event, data] = f.split("\n");
      return { event: event!.slice("event: ".length), data: JSON.parse(data!.slice(6)) };
    });
}

describe("a stream whose upstream fails", () => {
  it("mid-stream: the events so far, then one error event and the end", async () => {
    const { stack } = await start();
    stack.openai.streamFaults.push({ afterEvents: 1, action: "error" });
    const res = await post(stack.url, BODY);
    expect(res.status).toBe(200);
    const got = frames(await res.text());
    expect(got.map((f) => f.event)).toEqual(["image_generation.partial_image", "error"]);
    expect(got[1]!.data).toMatchObject({
      type: "error",
      error: { type: "server_error", message: expect.stringMatching(/OpenAI/) },
    });
  });

  it("mid-stream, through the SDK: the partial image, then an APIError", async () => {
    const { stack } = await start();
    stack.openai.streamFaults.push({ afterEvents: 1, action: "reset", eventDelayMs: 100 });
    const client = new OpenAI({ apiKey: KEY, baseURL: `${stack.url}/v1`, maxRetries: 0 });
    const stream = await client.images.generate(BODY as never);
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of stream as unknown as AsyncIterable<{ type: string }>)
        seen.push(event.type);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(seen).toEqual(["image_generation.partial_image"]);
    expect(error).toBeInstanceOf(OpenAI.APIError);
  });

  it("before its first event: the ordinary JSON error and status", async () => {
    const { stack } = await start();
    stack.openai.streamFaults.push({ afterEvents: 0, action: "error" });
    const res = await post(stack.url, BODY);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("server_error");
  });
});

describe("a client that goes away mid-stream", () => {
  it("cancels the upstream call, and what the upstream billed is charged to the key", async () => {
    const { stack, spendDb } = await start();
    // Slow enough that the client leaves while the upstream is still drawing.
    stack.openai.streamEventDelayMs = 300;
    const abandonedBefore = stack.openai.abandonedRequests;
    const controller = new AbortController();
    const res = await post(stack.url, BODY, controller.signal);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // the first partial image (or part of it)
    controller.abort();
    await vi.waitFor(() => expect(stack.openai.abandonedRequests).toBe(abandonedBefore + 1), WAIT);
    await stack.close();
    const ledger = new SqliteLedger(spendDb);
    try {
      const spent = await ledger.spent(createHash("sha256").update(KEY).digest("hex"));
      // gpt-image-1 low 1024x1024 lists at $0.011 an image; the hold was given back, not kept.
      expect(spent).toBeCloseTo(0.011, 6);
    } finally {
      await ledger.close();
    }
  });
});

describe("a stream whose upstream is slow between events", () => {
  it("is not cut by write_timeout: a wait with nothing unread is not a stalled client", async () => {
    // write_timeout cuts answers whose written bytes stay unread; here the client reads
    // everything and the upstream takes longer than write_timeout between its events.
    const { stack } = await start("server:\n  write_timeout: 0.2\n");
    stack.openai.streamEventDelayMs = 600;
    const res = await post(stack.url, { ...BODY, partial_images: 1 });
    expect(res.status).toBe(200);
    const got = frames(await res.text());
    expect(got.map((f) => f.event)).toEqual([
      "image_generation.partial_image",
      "image_generation.completed",
    ]);
  });
});
