/**
 * No configured secret ever reaches a client, whatever an upstream puts in its error: a
 * fast-check pass over error bodies in each provider's shape (OpenAI, Azure, Gemini, Vertex,
 * Bedrock, Recraft) filled with the gateway's own secrets (provider keys, the master key, a
 * gateway key, a client secret, a service-account private key, AWS secrets, a password in a
 * URL, the URL-signing key, storage secrets), served by a fake upstream. Every answer is read
 * raw over REST, Connect JSON, gRPC and gRPC-Web, and every client-visible byte (headers,
 * body, trailers, grpc-message decoded, ErrorInfo and details decoded) is searched.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import {
  type FakeUpstream,
  startFakeUpstream,
  type UpstreamAnswer,
} from "../support/fake-upstream.ts";
import { decodeRpcStatus } from "../support/rpc-status.ts";

const RPC_PATH = "/imagegate.v1.ImageService/CreateImage";

/** A secret that no pattern would recognise: only knowing it from the config removes it. */
function secret(prefix: string): string {
  return `${prefix}${randomBytes(18).toString("base64url")}`;
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const PRIVATE_KEY = privateKey.export({ type: "pkcs8", format: "pem" }).toString();

const SECRETS = {
  master: secret("mk"),
  gatewayKey: secret("gk"),
  openai: secret("oa"),
  azure: secret("az"),
  azureClientSecret: secret("cs"),
  gemini: secret("gm"),
  recraft: secret("rc"),
  awsSecret: secret("aws"),
  awsSession: secret("ses"),
  urlPassword: secret("pw"),
  signing: secret("sign"),
  s3Secret: secret("s3"),
  s3Session: secret("s3t"),
  privateKey: PRIVATE_KEY,
};
const ALL_SECRETS = Object.values(SECRETS);

/** The forms a secret can take on the wire: as is, JSON-escaped, percent-encoded, PEM body alone. */
function secretForms(s: string): string[] {
  const forms = [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s)];
  const body = /-----BEGIN [A-Z ]+-----([\s\S]+?)-----END/.exec(s)?.[1];
  if (body !== undefined) {
    forms.push(body.replace(/\s+/g, ""));
    // Any one line of the key is enough to matter.
    forms.push(...body.split("\n").filter((line) => line.length >= 40));
  }
  return forms;
}
const FORBIDDEN = [...new Set(ALL_SECRETS.flatMap(secretForms))];

// ---------------------------------------------------------------------------------------------
// Error bodies, in each provider's shape, full of secrets
// ---------------------------------------------------------------------------------------------

/** Text mixing secrets (whole, escaped, encoded) with noise, separators and padding that moves them across truncation points. */
const secretText = fc
  .array(
    fc.oneof(
      fc.constantFrom(...FORBIDDEN),
      fc.string({ maxLength: 6 }),
      fc.constantFrom(" ", ":", "=", '"', "/", "password=", "key: ", "https://", "Bearer ", "\n"),
      fc.nat(520).map((n) => "x".repeat(n)),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(""));

/** Header values cannot hold line breaks or non-Latin-1 characters. */
const headerText = secretText.map((t) => t.replace(/[^\x20-\x7e]/g, "_"));

const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    secretText,
    fc.integer(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(secretText, tie("value"), { maxKeys: 3 }),
  ),
})).value;

const STATUSES = [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503];
const status = fc.constantFrom(...STATUSES);

const openaiBody = fc.record({
  error: fc.record(
    {
      message: secretText,
      type: secretText,
      param: secretText,
      code: fc.oneof(
        secretText,
        fc.constantFrom("content_policy_violation", "moderation_blocked", "insufficient_quota"),
      ),
      moderation_details: json,
      inner_error: fc.record({
        code: secretText,
        content_filter_results: json,
        revised_prompt: secretText,
      }),
    },
    { requiredKeys: [] },
  ),
});

const googleBody = fc.record({
  error: fc.record({
    code: status,
    message: secretText,
    status: fc.oneof(
      fc.constantFrom("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNAVAILABLE"),
      secretText,
    ),
    details: fc.tuple(
      fc.record({
        "@type": fc.constant("type.googleapis.com/google.rpc.ErrorInfo"),
        reason: secretText,
        domain: secretText,
        metadata: fc.dictionary(secretText, secretText, { maxKeys: 2 }),
      }),
      fc.record({
        "@type": fc.constant("type.googleapis.com/google.rpc.BadRequest"),
        fieldViolations: fc.array(fc.record({ field: secretText, description: secretText }), {
          maxLength: 2,
        }),
      }),
    ),
  }),
});

const recraftBody = fc.oneof(
  fc.record({ code: secretText, message: secretText }),
  fc.record({ error: fc.record({ code: secretText, message: secretText }) }),
  fc.record({ detail: secretText }),
);

const bedrockBody = fc.oneof(
  fc.record({ message: secretText }),
  fc.record({ Message: secretText }),
);

/** A JSON error in the provider's shape, or any text at all. */
function answers(
  body: fc.Arbitrary<unknown>,
  headers: fc.Arbitrary<Record<string, string>> = fc.constant({}),
): fc.Arbitrary<UpstreamAnswer> {
  return fc.record({
    status,
    headers: headers.map((h) => ({ "content-type": "application/json", ...h })),
    body: fc.oneof(
      body.map((b) => JSON.stringify(b)),
      secretText,
    ),
  });
}

const bedrockHeaders = fc.record({
  "x-amzn-errortype": fc.oneof(
    fc.constantFrom(
      "ValidationException",
      "ThrottlingException",
      "AccessDeniedException",
      "ModelErrorException",
      "ServiceUnavailableException",
    ),
    headerText,
  ),
});

const PROVIDERS: { model: string; answers: fc.Arbitrary<UpstreamAnswer> }[] = [
  { model: "oa", answers: answers(openaiBody) },
  { model: "az", answers: answers(openaiBody) },
  { model: "gm", answers: answers(googleBody) },
  { model: "vx", answers: answers(googleBody) },
  { model: "br", answers: answers(bedrockBody, bedrockHeaders) },
  { model: "rc", answers: answers(recraftBody) },
];

// ---------------------------------------------------------------------------------------------
// The gateway, and raw clients that keep every byte
// ---------------------------------------------------------------------------------------------

let upstream: FakeUpstream;
let gateway: Gateway;
let h2: http2.ClientHttp2Session;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const up = upstream.url;
  const vertexKey = JSON.stringify({
    type: "service_account",
    project_id: "p",
    private_key_id: "kid-0123456789",
    private_key: SECRETS.privateKey,
    client_email: "sa@p.iam.gserviceaccount.com",
    token_uri: `${up}/token`,
  });
  const yaml = `
model_list:
  - model_name: oa
    params: { model: openai/dall-e-3, api_key: "${SECRETS.openai}", api_base: "${up}/openai/v1" }
  - model_name: az
    params:
      model: azure/dall-e-3
      api_base: "${up}/azure"
      api_key: "${SECRETS.azure}"
      api_version: "2024-10-21"
      client_secret: "${SECRETS.azureClientSecret}"
  - model_name: gm
    params: { model: gemini/imagen-4.0-generate-001, api_key: "${SECRETS.gemini}", api_base: "${up}/gemini/v1beta" }
  - model_name: vx
    params:
      model: vertex_ai/imagen-4.0-generate-001
      vertex_project: p
      vertex_location: us-central1
      vertex_credentials: '${vertexKey}'
      api_base: "${up}/vertex/v1"
  - model_name: br
    params:
      model: bedrock/amazon.titan-image-generator-v2:0
      aws_region_name: us-west-2
      aws_access_key_id: AKIDEXAMPLEID
      aws_secret_access_key: "${SECRETS.awsSecret}"
      aws_session_token: "${SECRETS.awsSession}"
      api_base: "${up}"
  - model_name: rc
    params: { model: recraft/recraftv3, api_key: "${SECRETS.recraft}", api_base: "${up}/recraft/v1" }
  - model_name: unused
    params: { model: openai/dall-e-2, api_key: "${SECRETS.openai}", api_base: "https://ops:${SECRETS.urlPassword}@proxy.example.com/v1" }
router_settings: { num_retries: 0, allowed_fails: 1000000, cooldown_time: 0 }
general_settings:
  master_key: os.environ/IMAGEGATE_MASTER_KEY
  url_signing_key: "${SECRETS.signing}"
keys:
  - { key: os.environ/TEAM_KEY, name: team }
storage:
  s3:
    bucket: images
    access_key_id: S3ACCESSKEYEXAMPLE
    secret_access_key: "${SECRETS.s3Secret}"
    session_token: "${SECRETS.s3Session}"
server: { host: 127.0.0.1, port: 0 }
`;
  const catalog = loadCatalog();
  const config = parseConfig(
    yaml,
    { IMAGEGATE_MASTER_KEY: SECRETS.master, TEAM_KEY: SECRETS.gatewayKey },
    catalog,
    "redaction-test",
  );
  gateway = await startGateway({ config, catalog, logger: silentLogger });
  h2 = http2.connect(gateway.url);
});

afterAll(async () => {
  h2?.close();
  await gateway?.shutdown(1000);
  await upstream?.close();
});

/** Everything a client can read of one answer, as text. */
type Visible = string[];

function headerTexts(headers: Iterable<[string, string]>): Visible {
  const out: Visible = [];
  for (const [name, value] of headers) {
    out.push(name, value);
    if (name === "grpc-message") out.push(percentDecoded(value));
    if (name === "grpc-status-details-bin") out.push(...statusTexts(value));
  }
  return out;
}

function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** `google.rpc.Status` (base64): its message, and each detail's bytes as text. */
function statusTexts(base64: string): Visible {
  const bytes = Buffer.from(base64, "base64");
  const status = decodeRpcStatus(bytes);
  return [
    bytes.toString("utf8"),
    status.message,
    ...status.details.map((d) => Buffer.from(d.value).toString("utf8")),
  ];
}

/** Every string in a JSON value (keys included), and base64 `value`s of Connect details decoded. */
function jsonTexts(value: unknown): Visible {
  if (typeof value === "string") return [value, Buffer.from(value, "base64").toString("utf8")];
  if (value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) return value.flatMap(jsonTexts);
  return Object.entries(value).flatMap(([k, v]) => [k, ...jsonTexts(v)]);
}

async function viaRest(model: string): Promise<Visible> {
  const res = await fetch(`${gateway.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${SECRETS.gatewayKey}` },
    body: JSON.stringify({ model, prompt: "a lighthouse" }),
  });
  const text = await res.text();
  expect(res.status).toBeGreaterThanOrEqual(400);
  return [...headerTexts(res.headers), text, ...jsonTexts(JSON.parse(text))];
}

async function viaConnectJson(model: string): Promise<Visible> {
  const res = await fetch(`${gateway.url}${RPC_PATH}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${SECRETS.master}` },
    body: JSON.stringify({ model, prompt: "a lighthouse" }),
  });
  const text = await res.text();
  expect(res.status).toBeGreaterThanOrEqual(400);
  return [...headerTexts(res.headers), text, ...jsonTexts(JSON.parse(text))];
}

function framed(model: string): Buffer {
  const message = toBinary(
    CreateImageRequestSchema,
    create(CreateImageRequestSchema, { model, prompt: "a lighthouse" }),
  );
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

function viaGrpc(model: string): Promise<Visible> {
  return new Promise((resolve, reject) => {
    const stream = h2.request({
      ":method": "POST",
      ":path": RPC_PATH,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${SECRETS.gatewayKey}`,
    });
    const visible: Visible = [];
    const chunks: Buffer[] = [];
    const keep = (h: http2.IncomingHttpHeaders) =>
      visible.push(
        ...headerTexts(
          Object.entries(h).flatMap(([k, v]) =>
            v === undefined
              ? []
              : [[k, Array.isArray(v) ? v.join(", ") : String(v)] as [string, string]],
          ),
        ),
      );
    stream.on("response", keep);
    stream.on("trailers", keep);
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      expect(visible).toContain("grpc-status");
      resolve([...visible, body.toString("utf8")]);
    });
    stream.on("error", reject);
    stream.end(framed(model));
  });
}

async function viaGrpcWeb(model: string): Promise<Visible> {
  const res = await fetch(`${gateway.url}${RPC_PATH}`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+proto",
      authorization: `Bearer ${SECRETS.master}`,
    },
    body: new Uint8Array(framed(model)),
  });
  const body = Buffer.from(await res.arrayBuffer());
  const visible = [...headerTexts(res.headers), body.toString("utf8")];
  // Frames: flag byte, 4-byte length, data; the trailer frame (0x80) is an HTTP/1 header block.
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + length);
    if (body[at]! & 0x80) {
      const trailers = data
        .toString("utf8")
        .split("\r\n")
        .filter((line) => line.includes(":"))
        .map((line) => {
          const i = line.indexOf(":");
          return [line.slice(0, i).trim(), line.slice(i + 1).trim()] as [string, string];
        });
      visible.push(...headerTexts(trailers));
    }
    at += 5 + length;
  }
  expect(visible.join("\n")).toContain("grpc-status");
  return visible;
}

function leaked(visible: Visible): string[] {
  const all = visible.join("\n");
  return FORBIDDEN.filter((s) => all.includes(s));
}

describe("no configured secret reaches a client", () => {
  it.each(PROVIDERS)(
    "$model: upstream errors over REST, Connect, gRPC and gRPC-Web",
    async ({ model, answers: arbitrary }) => {
      let scrubbed = 0;
      await fc.assert(
        fc.asyncProperty(arbitrary, async (a) => {
          upstream.answer(a);
          for (const call of [viaRest, viaConnectJson, viaGrpc, viaGrpcWeb]) {
            const visible = await call(model);
            expect(leaked(visible), `${call.name}: ${visible.join(" | ").slice(0, 2000)}`).toEqual(
              [],
            );
            if (visible.some((v) => v.includes("[redacted]"))) scrubbed += 1;
          }
        }),
        { numRuns: 25 },
      );
      // The upstream's text did reach the answers (scrubbed): the property was not vacuous.
      expect(scrubbed).toBeGreaterThan(10);
    },
  );
});
