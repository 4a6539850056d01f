/**
 * Upstream misbehaviour, each case through the official OpenAI SDK (REST) and grpc-js:
 * truncated bodies, invalid JSON with a 200, a 200 without images or with `data` of the
 * wrong shape, a body over the adapter's cap, connection resets, an upstream that never
 * answers, a wrong content type, an HTML error page, gzip-declared garbage, a redirect.
 *
 * Each must end in the contract's error (502/503/504 `server_error` with the right code;
 * UNAVAILABLE or DEADLINE_EXCEEDED with ErrorInfo), within the deadline, with the caller's
 * `x-request-id` and the call headers, after exactly one upstream attempt (the SDK, which
 * retries 5xx by default, is told not to), and nothing internal in the message. The
 * gateway answers /healthz after every case and serves normally at the end.
 */
import * as grpc from "@grpc/grpc-js";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Fault } from "@imagegate/emulators/faults";
import { openaiFaults } from "@imagegate/emulators/openai";
import {
  type CreateImageRequestSchema,
  ImageService,
  type ImagesResponseSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { MAX_UPSTREAM_BYTES, upstreamLimits } from "../../src/providers/http.ts";
import { grpcClient } from "../support/grpc.ts";
import { errorInfoOf, grpcStatusDetails } from "../support/rpc-status.ts";
import { EMULATOR_KEY, type Stack, startStack } from "../support/stack.ts";

/** The deployment's per-attempt timeout, in seconds. */
const TIMEOUT_S = 0.5;
/** The adapter's cap on an upstream body, lowered so a test need not send 64 MiB. */
const CAP = 256 * 1024;

const YAML = `
model_list:
  - model_name: quick
    params:
      model: openai/dall-e-2
      timeout: ${TIMEOUT_S}
    model_info:
      id: quick-1
router_settings:
  # One attempt per request, and failures do not rest the deployment for the next case.
  num_retries: 0
  allowed_fails: 100000
  cooldown_time: 0
`;

const PNG_1X1 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
/** Things an internal error page may hold that must never reach a client. */
const INTERNAL_HOST = "lb-7.internal.example.corp";
const INTERNAL_IP = "10.0.3.7";

interface Row {
  name: string;
  fault: Fault;
  status: 502 | 503 | 504;
  code: string;
  message: RegExp;
  /** What the client asks for (b64_json makes the gateway fetch a URL answer). */
  responseFormat?: "url" | "b64_json";
  /** Upper bound for the whole call, in ms. */
  withinMs?: number;
  /** The upstream produced (and charged for) an image before the gateway failed. */
  billable?: boolean;
}

const malformed = (name: string, body: unknown, why: RegExp): Row => ({
  name,
  fault: { status: 200, body },
  status: 502,
  code: "upstream_malformed_response",
  message: why,
});

const ROWS: Row[] = [
  {
    name: "a truncated body (reset mid-body)",
    fault: openaiFaults.resetMidBody(),
    status: 502,
    code: "upstream_unreachable",
    message: /unreachable/,
  },
  {
    name: "a connection reset before any answer",
    fault: openaiFaults.reset(),
    status: 502,
    code: "upstream_unreachable",
    message: /unreachable/,
  },
  {
    name: "an upstream that never answers",
    fault: openaiFaults.hang(),
    status: 504,
    code: "timeout",
    message: new RegExp(`did not answer within ${TIMEOUT_S} s`),
    withinMs: TIMEOUT_S * 1000 + 2500,
  },
  {
    name: "an upstream slower than the timeout",
    fault: openaiFaults.latency(5000),
    status: 504,
    code: "timeout",
    message: new RegExp(`did not answer within ${TIMEOUT_S} s`),
    withinMs: TIMEOUT_S * 1000 + 2500,
  },
  {
    name: "invalid JSON with status 200",
    fault: openaiFaults.malformed(),
    status: 502,
    code: "upstream_malformed_response",
    message: /malformed body: the body is not JSON/,
  },
  malformed("a 200 with no images", { created: 1, data: [] }, /no images/),
  malformed("a 200 without data", { created: 1 }, /no `data` array/),
  malformed("a 200 with data: null", { created: 1, data: null }, /no `data` array/),
  malformed("a 200 with data as a string", { created: 1, data: "iVBORw0KGgo" }, /no `data` array/),
  malformed(
    "a 200 with data as an object",
    { created: 1, data: { b64_json: PNG_1X1 } },
    /no `data` array/,
  ),
  malformed("a 200 with data: [null]", { created: 1, data: [null] }, /data\[0\] is not an object/),
  malformed("a 200 with data: [42]", { created: 1, data: [42] }, /data\[0\] is not an object/),
  malformed(
    "a 200 with data: [{}]",
    { created: 1, data: [{}] },
    /data\[0\] has neither url nor b64_json/,
  ),
  malformed(
    "a 200 whose image fields have the wrong types",
    { created: 1, data: [{ url: 5, b64_json: false, revised_prompt: [] }] },
    /data\[0\] has neither url nor b64_json/,
  ),
  malformed(
    "a 200 whose second image is broken",
    { created: 1, data: [{ b64_json: PNG_1X1 }, "x"] },
    /data\[1\] is not an object/,
  ),
  malformed(
    "a 200 with an empty b64_json",
    { created: 1, data: [{ b64_json: "" }] },
    /data\[0\]\.b64_json holds no base64 data/,
  ),
  malformed(
    "a 200 whose b64_json is not base64",
    { created: 1, data: [{ b64_json: "!!!! %%%% ...." }] },
    /data\[0\]\.b64_json holds no base64 data/,
  ),
  malformed("a 200 with a JSON null body", null, /no `data` array/),
  {
    name: "a body larger than the cap",
    fault: {
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ created: 1, data: [{ b64_json: "A".repeat(CAP * 2) }] }),
    },
    status: 502,
    code: "upstream_response_too_large",
    message: new RegExp(`sent more than ${CAP} bytes`),
  },
  {
    name: "a valid image body declared as text/html",
    fault: {
      status: 200,
      headers: { "content-type": "text/html; charset=utf-8" },
      body: JSON.stringify({ created: 1, data: [{ b64_json: PNG_1X1 }] }),
    },
    status: 502,
    code: "upstream_malformed_response",
    message: /the body is not JSON/,
  },
  {
    name: "gzip-declared garbage",
    fault: {
      status: 200,
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: "\u001f\u008b\u0008 this is not a gzip stream",
    },
    status: 502,
    code: "upstream_malformed_response",
    message: /the body is not JSON/,
  },
  {
    name: "an HTML error page with 502",
    fault: {
      status: 502,
      headers: { "content-type": "text/html" },
      body: `<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><p>upstream http://${INTERNAL_HOST}:8080/v1/images failed (${INTERNAL_IP}:8443)</p></body></html>`,
    },
    status: 502,
    code: "upstream_error",
    message: /OpenAI answered 502: <html>/,
  },
  {
    name: "an HTML error page with 503",
    fault: {
      status: 503,
      headers: { "content-type": "text/html" },
      body: `<html><body>Service Unavailable - ${INTERNAL_IP}</body></html>`,
    },
    status: 503,
    code: "upstream_unavailable",
    message: /OpenAI answered 503/,
  },
  {
    name: "a redirect instead of an answer",
    fault: { status: 302, headers: { location: `http://${INTERNAL_HOST}/elsewhere` }, body: "" },
    status: 502,
    code: "upstream_error",
    message: /OpenAI answered 302/,
  },
  {
    name: "an image URL pointing at cloud metadata (asked for b64_json)",
    fault: {
      status: 200,
      body: { created: 1, data: [{ url: "http://169.254.169.254/latest/meta-data/" }] },
    },
    status: 502,
    code: "image_url_refused",
    message: /will not fetch/,
    responseFormat: "b64_json",
    billable: true,
  },
  {
    name: "an image URL that is not a URL (asked for b64_json)",
    fault: { status: 200, body: { created: 1, data: [{ url: "not a url at all" }] } },
    status: 502,
    code: "image_url_refused",
    message: /not a valid URL/,
    responseFormat: "b64_json",
    billable: true,
  },
];

/** Text that must appear nowhere in an error a client sees. */
const NEVER = [EMULATOR_KEY, "127.0.0.1", INTERNAL_HOST, INTERNAL_IP, "169.254.169.254", "    at "];

interface Seen {
  httpStatus?: number;
  grpcCode?: grpc.status;
  type: unknown;
  code: unknown;
  param: unknown;
  message: string;
  domain?: string;
  headers: Headers;
  ms: number;
}

let stack: Stack;
let sdk: OpenAI;
let g: ReturnType<typeof grpcClient>;

beforeAll(async () => {
  upstreamLimits.maxBytes = CAP;
  stack = await startStack({ yaml: YAML });
  // The SDK's defaults (2 retries of a 5xx): the gateway must tell it not to multiply attempts.
  sdk = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: "x", timeout: 15_000 });
  g = grpcClient(ImageService, `127.0.0.1:${stack.gateway.port}`);
});

afterAll(async () => {
  upstreamLimits.maxBytes = MAX_UPSTREAM_BYTES;
  g?.close();
  await stack?.close();
});

afterEach(async () => {
  stack.openai.faults.clear();
  const health = await fetch(`${stack.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  expect(health.status).toBe(200);
});

function body(responseFormat: "url" | "b64_json" = "url") {
  return {
    model: "quick",
    prompt: "a lighthouse in fog",
    size: "256x256" as const,
    response_format: responseFormat,
  };
}

/** The same request as a protobuf message (camelCase fields). */
function message(responseFormat: "url" | "b64_json" = "url") {
  return { model: "quick", prompt: "a lighthouse in fog", size: "256x256", responseFormat };
}

function grpcCall(request: ReturnType<typeof message>, md = new grpc.Metadata()) {
  return g.unary<typeof CreateImageRequestSchema, typeof ImagesResponseSchema>(
    "createImage",
    request,
    md,
    {
      deadline: Date.now() + 15_000,
    },
  );
}

async function viaSdk(row: Row, requestId: string): Promise<Seen> {
  const started = performance.now();
  const outcome = await sdk.images
    .generate(body(row.responseFormat), { headers: { "x-request-id": requestId } })
    .then(() => undefined)
    .catch((e: unknown) => e);
  const ms = performance.now() - started;
  if (!(outcome instanceof OpenAI.APIError) || outcome.status === undefined) {
    throw new Error(
      `expected an API error, got ${outcome === undefined ? "a success" : String(outcome)}`,
    );
  }
  const error = outcome.error as Record<string, unknown> | undefined;
  return {
    httpStatus: outcome.status,
    type: error?.type,
    code: error?.code,
    param: error?.param,
    message: String(error?.message),
    headers: outcome.headers ?? new Headers(),
    ms,
  };
}

async function viaGrpc(row: Row, requestId: string): Promise<Seen> {
  const md = new grpc.Metadata();
  md.set("x-request-id", requestId);
  const started = performance.now();
  const err = await grpcCall(message(row.responseFormat), md)
    .then(() => undefined)
    .catch((e: unknown) => e as grpc.ServiceError);
  const ms = performance.now() - started;
  if (err === undefined || typeof err.code !== "number")
    throw new Error(`expected a gRPC error, got ${String(err)}`);
  const status = grpcStatusDetails(err);
  const info = status && errorInfoOf(status);
  const headers = new Headers();
  for (const [k, v] of Object.entries(err.metadata?.getMap() ?? {}))
    if (!k.endsWith("-bin")) headers.set(k, String(v));
  return {
    grpcCode: err.code,
    type: info?.metadata.type,
    code: info?.reason,
    param: info?.metadata.param,
    message: status?.message ?? err.details,
    ...(info === undefined ? {} : { domain: info.domain }),
    headers,
    ms,
  };
}

describe.each([
  ["OpenAI SDK", viaSdk],
  ["grpc-js", viaGrpc],
] as const)("upstream faults through the %s", (client, call) => {
  it.each(ROWS.map((r) => [r.name, r] as const))("%s", async (_name, row) => {
    stack.openai.faults.push(row.fault);
    const before = stack.openai.requests.length;
    const requestId = `fault-${client === "grpc-js" ? "grpc" : "rest"}-${Math.random().toString(36).slice(2)}`;
    const seen = await call(row, requestId);

    if (seen.httpStatus !== undefined) {
      expect(seen.httpStatus).toBe(row.status);
    } else {
      expect(seen.grpcCode).toBe(
        row.status === 504 ? grpc.status.DEADLINE_EXCEEDED : grpc.status.UNAVAILABLE,
      );
      expect(seen.domain).toBe("imagegate");
    }
    expect(seen.type).toBe("server_error");
    expect(seen.code).toBe(row.code);
    expect(seen.message).toMatch(row.message);
    expect(seen.message).toMatch(/\[quick-1\]|will not fetch|Downloading/);
    for (const secret of NEVER) expect(seen.message).not.toContain(secret);
    expect(seen.headers.get("x-request-id")).toBe(requestId);
    // "Errors carry x-imagegate-cost-usd: 0 unless something billable happened."
    if (row.billable) expect(Number(seen.headers.get("x-imagegate-cost-usd"))).toBeGreaterThan(0);
    else expect(seen.headers.get("x-imagegate-cost-usd")).toBe("0");
    expect(seen.headers.get("x-imagegate-model")).toBe("quick");
    expect(seen.headers.get("x-imagegate-deployment")).toBe("quick-1");
    expect(seen.headers.get("x-imagegate-attempts")).toBe("1");
    expect(seen.ms).toBeLessThan(row.withinMs ?? 2000);
    // One upstream call: no gateway retry (num_retries: 0) and no SDK retry on top.
    expect(stack.openai.requests.length - before).toBe(1);
    expect(stack.openai.faults.size).toBe(0);
  });
});

describe("after the faults", () => {
  it("an absurd token count from the upstream is clamped, not a failed encoding", async () => {
    const fault: Fault = {
      status: 200,
      body: {
        created: 1,
        data: [{ b64_json: PNG_1X1 }],
        usage: { input_tokens: 1e20, output_tokens: -5, total_tokens: 2 ** 40 },
      },
    };
    stack.openai.faults.push(fault);
    const rest = await sdk.images.generate(body("b64_json"));
    expect(rest.data?.[0]?.b64_json).toBe(PNG_1X1);
    expect(rest.usage).toMatchObject({
      input_tokens: 2 ** 32 - 1,
      output_tokens: 0,
      total_tokens: 2 ** 32 - 1,
    });

    stack.openai.faults.push(fault);
    const { response } = await grpcCall(message("b64_json"));
    expect(response.data).toHaveLength(1);
    expect(response.usage?.inputTokens).toBe(2 ** 32 - 1);
  });

  it("the gateway still serves both protocols normally", async () => {
    const rest = await sdk.images.generate(body("b64_json"));
    expect(rest.data?.[0]?.b64_json).toMatch(/^iVBORw0KGgo/);
    const { response } = await grpcCall(message("b64_json"));
    expect(response.data).toHaveLength(1);
    expect(stack.openai.faults.size).toBe(0);
  });
});
