/**
 * REST requests the OpenAI SDK cannot express: broken JSON, bad bytes, wrong types, unknown
 * fields, wrong content types, bodies over the limit and unknown paths, over HTTP/1.1
 * (fetch) and h2 (node:http2). None of them may reach the provider.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useE2EStack, MAX_BODY_BYTES } from "../support/e2e.ts";
import { Code, h2Request, type RawResponse, RPC_PROTOCOLS } from "../support/protocols.ts";

const e2e = useE2EStack();
let h2: http2.ClientHttp2Session;
beforeAll(() => {
  h2 = http2.connect(e2e.stack.url);
});
afterAll(() => {
  h2?.close();
});

type Transport = "h1" | "h2";

interface RawRequest {
  method?: string;
  path?: string;
  contentType?: string | null;
  body?: string | Uint8Array;
}

async function send(
  transport: Transport,
  req: RawRequest,
  requestId: string,
): Promise<RawResponse> {
  const method = req.method ?? "POST";
  const path = req.path ?? "/v1/images/generations";
  const headers: Record<string, string> = { "x-request-id": requestId };
  const contentType = req.contentType === undefined ? "application/json" : req.contentType;
  if (contentType !== null) headers["content-type"] = contentType;
  if (transport === "h2")
    return h2Request(h2, { ":method": method, ":path": path, ...headers }, req.body);
  const res = await fetch(`${e2e.stack.url}${path}`, {
    method,
    headers,
    ...(req.body === undefined ? {} : { body: req.body as BodyInit }),
  });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

interface WireRow {
  name: string;
  req: RawRequest;
  status: number;
  code?: string;
  param?: string;
  message: RegExp;
}

const bad = (name: string, req: RawRequest, message: RegExp, param?: string): WireRow => ({
  name,
  req,
  status: 400,
  message,
  ...(param === undefined ? {} : { param }),
});
const json = (v: unknown) => JSON.stringify(v);
const big = json({ prompt: "p".repeat(MAX_BODY_BYTES + 1000) });

const ROWS: WireRow[] = [
  bad("malformed JSON", { body: '{"prompt": "a fox",' }, /could not parse the JSON body/),
  bad("an empty body", { body: "" }, /could not parse the JSON body/),
  bad(
    "invalid UTF-8",
    {
      body: Buffer.concat([
        Buffer.from('{"prompt": "caf'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]),
    },
    /not valid UTF-8/,
  ),
  bad(
    "n as a string",
    { body: json({ prompt: "x", n: "two" }) },
    /Invalid type for 'n': expected an integer, but got a string/,
    "n",
  ),
  bad(
    "n as a decimal",
    { body: json({ prompt: "x", n: 1.5 }) },
    /Invalid type for 'n'.*decimal/,
    "n",
  ),
  bad("n beyond int32", { body: json({ prompt: "x", n: 1e12 }) }, /'n'.*maximum/, "n"),
  bad(
    "prompt as a number",
    { body: json({ prompt: 5 }) },
    /Invalid type for 'prompt': expected a string/,
    "prompt",
  ),
  bad(
    "prompt as an array",
    { body: json({ prompt: ["a", "b"] }) },
    /Invalid type for 'prompt'.*array/,
    "prompt",
  ),
  bad(
    "stream as a string",
    { body: json({ prompt: "x", stream: "yes" }) },
    /Invalid type for 'stream': expected a boolean/,
    "stream",
  ),
  bad(
    "an unknown field",
    { body: json({ prompt: "x", foo: 1 }) },
    /Unrecognized request argument supplied: foo/,
    "foo",
  ),
  bad(
    "a camelCase field",
    { body: json({ prompt: "x", responseFormat: "url" }) },
    /Unrecognized request argument supplied: responseFormat/,
    "responseFormat",
  ),
  bad(
    "an array body",
    { body: json([{ prompt: "x" }]) },
    /must be a JSON object, but got an array/,
  ),
  bad("a string body", { body: json("a fox") }, /must be a JSON object, but got a string/),
  bad("a null body", { body: "null" }, /must be a JSON object, but got null/),
  bad(
    "text/plain",
    { contentType: "text/plain", body: json({ prompt: "x" }) },
    /Content-Type.*text\/plain/,
  ),
  bad(
    "a form body",
    { contentType: "application/x-www-form-urlencoded", body: "prompt=x" },
    /Content-Type/,
  ),
  bad("no content type", { contentType: null, body: json({ prompt: "x" }) }, /Content-Type/),
  {
    name: "a body over the limit",
    req: { body: big },
    status: 413,
    code: "request_too_large",
    message: new RegExp(`${MAX_BODY_BYTES} bytes`),
  },
  {
    name: "POST to an unknown path",
    req: { path: "/v1/images/upscale", body: json({ prompt: "x" }) },
    status: 404,
    code: "unknown_url",
    message: /Unknown request URL: POST \/v1\/images\/upscale/,
  },
  {
    name: "GET of an unknown path",
    req: { method: "GET", path: "/v1/engines", contentType: null },
    status: 404,
    code: "unknown_url",
    message: /GET \/v1\/engines/,
  },
  {
    name: "GET of the generations path",
    req: { method: "GET", path: "/v1/images/generations", contentType: null },
    status: 404,
    code: "unknown_url",
    message: /GET \/v1\/images\/generations/,
  },
];

describe.each(["h1", "h2"] as const)("REST wire errors over %s", (transport) => {
  it.each(ROWS.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    const before = e2e.stack.openai.requests.length;
    const requestId = `wire-${transport}-${Math.random().toString(36).slice(2)}`;
    const res = await send(transport, row.req, requestId);
    expect(res.status).toBe(row.status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(res.body.toString("utf8")) as { error: Record<string, unknown> };
    expect(body.error).toEqual({
      message: expect.stringMatching(row.message),
      type: "invalid_request_error",
      param: row.param ?? null,
      code: row.code ?? null,
    });
    expect(res.headers.get("x-request-id")).toBe(requestId);
    expect(res.headers.get("x-imagegate-cost-usd")).toBe("0");
    expect(e2e.stack.openai.requests.length).toBe(before);
  });

  it("a JSON content type with parameters is accepted", async () => {
    const res = await send(
      transport,
      {
        contentType: "application/json; charset=utf-8",
        body: json({ model: "dall-e-2", prompt: "ok", size: "256x256" }),
      },
      `ok-${transport}`,
    );
    expect(res.status).toBe(200);
  });
});

describe("body size limit", () => {
  it("a chunked body over the limit is cut off with 413", async () => {
    const before = e2e.stack.openai.requests.length;
    const chunk = new TextEncoder().encode(" ".repeat(4096));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"prompt": "x"'));
        if (sent > MAX_BODY_BYTES * 2) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${e2e.stack.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "request_too_large",
    );
    expect(e2e.stack.openai.requests.length).toBe(before);
  });

  it("a body just under the limit is read", async () => {
    const padding =
      MAX_BODY_BYTES - json({ model: "dall-e-2", prompt: "x", size: "256x256", user: "" }).length;
    const body = json({
      model: "dall-e-2",
      prompt: "x",
      size: "256x256",
      user: "u".repeat(padding),
    });
    expect(Buffer.byteLength(body)).toBe(MAX_BODY_BYTES);
    const res = await send("h1", { body }, "under-limit");
    expect(res.status).toBe(200);
  });

  it.each(RPC_PROTOCOLS)(
    "%s: a message over the limit is RESOURCE_EXHAUSTED and never sent upstream",
    async (protocol) => {
      const before = e2e.stack.openai.requests.length;
      const outcome = await e2e.clients.call(protocol, {
        model: "dall-e-2",
        prompt: "x",
        user: "u".repeat(MAX_BODY_BYTES + 1000),
      });
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.grpcCode).toBe(Code.ResourceExhausted);
      expect(e2e.stack.openai.requests.length).toBe(before);
    },
  );
});

describe("REST over h2", () => {
  it("serves a generation and the call headers", async () => {
    const res = await send(
      "h2",
      { body: json({ model: "image-hq", prompt: "over h2", response_format: "b64_json" }) },
      "h2-call",
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-imagegate-model")).toBe("image-hq");
    expect(res.headers.get("x-imagegate-deployment")).toBe("openai-eu-1");
    expect(res.headers.get("x-request-id")).toBe("h2-call");
    expect(typeof (JSON.parse(res.body.toString("utf8")) as { created: unknown }).created).toBe(
      "number",
    );
  });
});
