/**
 * The Recraft emulator on its own, over plain HTTP: Bearer auth with plain-text 401, body
 * validation per model (sizes, styles and substyles, V4's missing extras), the answer
 * (credits, URLs on its own host, base64, SVG for vector models), the refusal, and faults.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { pngSize } from "@imagegate/emulators/png";
import {
  type RecraftEmulator,
  recraftFaults,
  startRecraftEmulator,
} from "@imagegate/emulators/recraft";
import { svgSize } from "@imagegate/emulators/svg";

// biome-ignore lint/suspicious/noExplicitAny: assertions read parsed JSON bodies of any shape
type Json = any;

const KEY = "rc-emulator-test-key";
let emu: RecraftEmulator;
let clock = 1_800_000_000_000;

beforeAll(async () => {
  emu = await startRecraftEmulator({ apiKey: KEY, now: () => clock });
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.faults.clear();
  clock = 1_800_000_000_000;
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${emu.baseUrl}/images/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = res.headers.get("content-type")?.includes("json")
      ? (JSON.parse(text) as Json)
      : undefined;
  } catch {
    json = undefined; // a malformed body, as a fault may send
  }
  return { status: res.status, json, text, headers: res.headers };
}

describe("auth and routes", () => {
  it("answers a missing or wrong token with a plain-text 401", async () => {
    for (const headers of [{ authorization: "Bearer wrong" }, { authorization: "" }]) {
      const r = await post({ prompt: "x" }, headers);
      expect(r.status).toBe(401);
      expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(r.text).toBe("Unauthorized");
    }
  });

  it("answers unknown paths with a plain-text 404", async () => {
    const res = await fetch(`${emu.baseUrl}/images/edits`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toBe("Not Found");
  });
});

describe("validation", () => {
  it.each([
    [{ prompt: "x", n: 7 }, "invalid_n"],
    [{ prompt: "x", model: "recraftv9" }, "invalid_model"],
    [{ prompt: "x", model: "recraftv3", size: "1792x1024" }, "invalid_size"],
    [{ prompt: "x", model: "recraftv4", size: "1820x1024" }, "invalid_size"],
    [{ prompt: "x", model: "recraftv4", style: "realistic_image" }, "style_not_supported"],
    [{ prompt: "x", model: "recraftv4_1", negative_prompt: "text" }, "not_supported"],
    [{ prompt: "x", model: "recraftv3", style: "vector_illustration" }, "invalid_style"],
    [{ prompt: "x", model: "recraftv3", substyle: "hdr" }, "invalid_substyle"],
    [
      { prompt: "x", model: "recraftv3", style: "digital_illustration", substyle: "hdr" },
      "invalid_substyle",
    ],
    [{ prompt: "x", model: "recraftv3", user: "u" }, "invalid_request"],
    [{ prompt: "x".repeat(1001), model: "recraftv3" }, "prompt_too_long"],
    [{ prompt: "x", response_format: "png" }, "invalid_response_format"],
  ])("rejects %j with %s", async (body, code) => {
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code });
    expect(typeof r.json!.message).toBe("string");
  });

  it("accepts sizes, aspect ratios, styles and the V3 extras Recraft documents", async () => {
    for (const body of [
      {
        prompt: "x",
        model: "recraftv3",
        size: "1707x1024",
        style: "realistic_image",
        substyle: "hdr",
        negative_prompt: "text",
        random_seed: 3,
      },
      { prompt: "x", model: "recraftv3", size: "16:9", controls: { no_text: true } },
      { prompt: "x".repeat(5000), model: "recraftv4", size: "1344x768" },
      { prompt: "x", model: "recraftv2_vector", style: "icon", substyle: "outline" },
    ]) {
      const r = await post(body);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
  });
});

describe("answers", () => {
  it("returns URLs on its own host by default, with credits and image ids", async () => {
    const r = await post({ prompt: "a fox", model: "recraftv3", n: 3, size: "1820x1024" });
    expect(r.status).toBe(200);
    expect(r.headers.get("x-recraft-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json!.credits).toBe(120);
    expect(r.json!.data).toHaveLength(3);
    const [item] = r.json!.data;
    expect(item.image_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(item.url.startsWith(`${new URL(emu.baseUrl).origin}/img/`)).toBe(true);
    const download = await fetch(item.url);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
      width: 1820,
      height: 1024,
    });
    clock += 25 * 60 * 60 * 1000;
    expect((await fetch(item.url)).status).toBe(404);
  });

  it("returns base64 when asked, at the model's default size", async () => {
    const r = await post({ prompt: "a fox", model: "recraftv4_pro", response_format: "b64_json" });
    expect(r.json!.credits).toBe(250);
    expect(pngSize(Buffer.from(r.json!.data[0].b64_json, "base64"))).toEqual({
      width: 2048,
      height: 2048,
    });
  });

  it("answers SVG for vector models, by URL or base64", async () => {
    const b64 = await post({
      prompt: "an icon",
      model: "recraftv3_vector",
      response_format: "b64_json",
      size: "9:16",
    });
    expect(b64.json!.credits).toBe(80);
    const svg = Buffer.from(b64.json!.data[0].b64_json, "base64").toString("utf8");
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(svgSize(svg)).toEqual({ width: 1024, height: 1820 });
    const byUrl = await post({ prompt: "an icon", model: "recraftv4_vector" });
    const download = await fetch(byUrl.json!.data[0].url);
    expect(download.headers.get("content-type")).toBe("image/svg+xml");
    expect(svgSize(await download.text())).toEqual({ width: 1024, height: 1024 });
  });

  it("refuses prompts with the word forbidden", async () => {
    const r = await post({ prompt: "something Forbidden", model: "recraftv3" });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: "content_moderation" });
  });
});

describe("faults", () => {
  it("plays a 429 without Retry-After, targeted by model", async () => {
    emu.faults.push({ ...recraftFaults.rateLimit(), model: "recraftv3" });
    expect((await post({ prompt: "x", model: "recraftv4" })).status).toBe(200);
    const r = await post({ prompt: "x", model: "recraftv3" });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBeNull();
    expect(r.json).toMatchObject({ code: "rate_limit_exceeded" });
  });

  it("takes faults over the control endpoint", async () => {
    const queued = await fetch(`${new URL(emu.baseUrl).origin}/__emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ ...recraftFaults.unavailable(), times: 2 }),
    });
    expect(queued.status).toBe(201);
    expect((await post({ prompt: "x" })).status).toBe(503);
    expect((await post({ prompt: "x" })).text).toBe("Service Unavailable");
    expect((await post({ prompt: "x" })).status).toBe(200);
    await fetch(`${new URL(emu.baseUrl).origin}/__emulator/faults`, {
      method: "POST",
      body: JSON.stringify(recraftFaults.malformed()),
    });
    expect((await post({ prompt: "x" })).text).toMatch(/^\{"created": 1713833628/);
  });
});
