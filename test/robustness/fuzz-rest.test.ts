/**
 * Property-based fuzzing of the REST path: thousands of malformed bodies (wrong types for
 * every field, nulls, huge numbers, deep nesting, invalid UTF-8, duplicate keys, truncated
 * JSON, random bytes, wrong content types, huge strings, unicode edge cases, prototype
 * pollution keys) against one running gateway, over HTTP/1.1 and h2c.
 *
 * Property, for every case: the answer is a 4xx in the contract's error shape with
 * `x-request-id` (a 2xx only when the body really was a well-typed request), and a 4xx
 * names what is wrong the way the contract says (413 past the size limit, the parse
 * error, the field at fault). Afterwards the gateway still answers /healthz and a normal
 * request, and its heap is back near the baseline.
 *
 * Memory is measured in-process: the gateway runs in this worker and `heapUsed` is read
 * after forced full collections (`gc` is enabled at run time, see support/robustness.ts).
 * That is precise to a few hundred kilobytes. The alternative, a child process's RSS from
 * /proc, mostly measures the allocator: V8 and glibc keep freed pages mapped after a
 * burst of multi-megabyte bodies, so RSS stays high without any leak and the check would
 * either be flaky or too loose to mean anything. A hard crash is still seen: it kills this
 * worker, and an uncaught error or unhandled rejection fails the run.
 *
 * Reproduce with the printed seed: FUZZ_SEED=<seed> FUZZ_RUNS=<n> npx vitest run test/robustness/fuzz-rest.test.ts
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assertOpenAIError,
  ECHOED_REQUEST_ID,
  MiB,
  RawClient,
  type RawAnswer,
  type RawPost,
  settledHeapUsed,
} from "../support/robustness.ts";
import { type Stack, startStack } from "../support/stack.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_801);
const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);
const WARMUP_RUNS = 300;
/** Successful requests after the fuzz, each with an upstream call. */
const SUCCESS_RUNS = Number(process.env.FUZZ_SUCCESS_RUNS ?? 2000);
/** The gateway's default body limit (4 MiB), as an operator would run it. */
const MAX_BODY = 4 * MiB;
const ROUTE = "/v1/images/generations";

// ---------------------------------------------------------------------------------------------
// The request's fields, restated from the proto/contract (not read from the gateway's code).
// ---------------------------------------------------------------------------------------------

type FieldType = "string" | "int32" | "uint32" | "bool";
const FIELDS: Record<string, FieldType> = {
  prompt: "string",
  model: "string",
  n: "int32",
  quality: "string",
  response_format: "string",
  size: "string",
  style: "string",
  user: "string",
  background: "string",
  moderation: "string",
  output_format: "string",
  output_compression: "int32",
  stream: "bool",
  partial_images: "int32",
  safety_identifier: "string",
  negative_prompt: "string",
  seed: "uint32",
  aspect_ratio: "string",
  substyle: "string",
};
const FIELD_NAMES = Object.keys(FIELDS);

/** Values the catalog accepts for some model, so some random requests get all the way through. */
const PLAUSIBLE: Record<string, readonly string[]> = {
  model: ["dall-e-2", "dall-e-3", "gpt-image-1", "openai/dall-e-2", "no-such-model", "azure/x", ""],
  quality: ["standard", "hd", "low", "auto"],
  response_format: ["url", "b64_json", "png"],
  size: ["256x256", "512x512", "1024x1024", "auto", "999x999"],
  style: ["vivid", "natural"],
  background: ["transparent", "opaque", "auto"],
  moderation: ["low", "auto"],
  output_format: ["png", "jpeg", "webp"],
};

// ---------------------------------------------------------------------------------------------
// Generators: a case is a small recipe; the bytes are built from it, so a shrunk failure
// prints readably (a depth or a length, not megabytes).
// ---------------------------------------------------------------------------------------------

type Body =
  | { kind: "json"; value: unknown }
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: number[] }
  | { kind: "splice"; text: string; at: number; bad: number[] }
  | { kind: "deep"; before: string; open: string; depth: number; close: string; after: string }
  | { kind: "huge"; field: string; unit: string; length: number; quote: boolean };

interface Case {
  family: string;
  transport: "h1" | "h2";
  contentType: string | null;
  path: string;
  requestId: string | undefined;
  body: Body;
}

const hugeNumberLiteral = fc.oneof(
  fc.constantFrom(
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "0.0",
    "1.0",
    "1E1",
    "1e0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "123456789012345678901234567890",
    "0.1e1",
    "0x10",
    "01",
    "+1",
    ".5",
    "1.",
    "NaN",
    "Infinity",
    "-Infinity",
    "1_000",
    "1e",
  ),
  fc.stringMatching(/^-?[1-9]\d{0,400}(\.\d{1,40})?([eE][+-]?\d{1,4})?$/),
);

const unicodeString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.constantFrom(
    "\u0000",
    "\uFEFF",
    "\u202E\u202Dreversed",
    "\u2028\u2029",
    "e\u0301\u0301\u0301\u0301",
    "\uD83D\uDE00",
    "\uD800",
    "\uDFFF",
    "\uFFFD\uFFFE\uFFFF",
    "\u{10FFFF}",
    "𝕳𝖊𝖑𝖑𝖔",
    "<script>alert(1)</script>",
    "'; DROP TABLE images; --",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4j-style payload, on purpose
    "${jndi:ldap://x}",
    "%s%n%x",
    "../../etc/passwd",
  ),
);

const scalarJson = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.integer({ min: -3, max: 12 }),
  fc.double(),
  fc.constantFrom(
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    1e300,
    -1e300,
    5e-324,
    0.5,
  ),
  fc.string({ maxLength: 30 }),
  unicodeString,
  fc.constantFrom("1", "true", "null", "[]", "{}"),
);

/** Any JSON value a field might wrongly hold: scalars, arrays, objects, nested a little. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalarJson },
  { weight: 1, arbitrary: fc.array(scalarJson, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalarJson, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);

function fieldValue(name: string): fc.Arbitrary<unknown> {
  const type = FIELDS[name]!;
  const rightType =
    type === "string"
      ? fc.oneof(
          fc.constantFrom(...(PLAUSIBLE[name] ?? ["x"])),
          fc.string({ maxLength: 60 }),
          unicodeString,
        )
      : type === "bool"
        ? fc.boolean()
        : fc.oneof(fc.integer({ min: -2, max: 12 }), fc.integer());
  return fc.oneof({ weight: 2, arbitrary: rightType }, { weight: 2, arbitrary: anyJson });
}

/** Any subset of the fields, each with a right- or wrong-typed value. */
const fieldRecord = fc.record(Object.fromEntries(FIELD_NAMES.map((f) => [f, fieldValue(f)])), {
  requiredKeys: [],
});

/** Requests that pass the gateway's own checks: cheap ones that the emulator answers. */
const validRequest = fc.record(
  {
    prompt: fc.string({ minLength: 1, maxLength: 80 }).filter((p) => p.trim().length > 0),
    model: fc.constantFrom("dall-e-2", "openai/dall-e-2"),
    n: fc.integer({ min: 1, max: 2 }),
    size: fc.constant("256x256"),
    response_format: fc.constantFrom("b64_json", "url"),
    user: fc.string({ maxLength: 20 }),
  },
  { requiredKeys: ["prompt", "model", "size"] },
);

const extraKey = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "responseFormat",
    "Prompt",
    "prompt ",
    "",
    "0",
    "4294967295",
    "\u0000",
    "prompt\u0000",
    "𝖕𝖗𝖔𝖒𝖕𝖙",
  ),
  fc.string({ maxLength: 12 }),
);

/** Raw JSON text for an object with the given members, in order (duplicates kept). */
function objectText(members: [string, string][]): string {
  return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
}

const jsonBody = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Body> =>
  value.map((v) => ({ kind: "json", value: v }));
const textBody = (text: fc.Arbitrary<string>): fc.Arbitrary<Body> =>
  text.map((t) => ({ kind: "text", text: t }));

const families: Record<string, { weight: number; body: fc.Arbitrary<Body> }> = {
  "wrong-types": { weight: 30, body: jsonBody(fieldRecord) },
  valid: { weight: 5, body: jsonBody(validRequest) },
  "top-level": { weight: 4, body: jsonBody(fc.oneof(fc.jsonValue({ maxDepth: 3 }), scalarJson)) },
  "extra-keys": {
    weight: 5,
    body: jsonBody(
      fc
        .tuple(validRequest, fc.dictionary(extraKey, anyJson, { minKeys: 1, maxKeys: 3 }))
        .map(([v, extra]) => ({ ...v, ...extra })),
    ),
  },
  "prototype-pollution": {
    weight: 5,
    body: textBody(
      fc
        .tuple(
          fc.constantFrom("__proto__", "constructor", "prototype"),
          fc.constantFrom(
            '{"polluted":true}',
            '{"prototype":{"polluted":true}}',
            '{"__proto__":{"polluted":true}}',
            "null",
            '"x"',
            "[]",
          ),
          fc.boolean(),
        )
        .map(([key, value, first]) =>
          objectText(
            first
              ? [
                  [key, value],
                  ["prompt", '"a fox"'],
                ]
              : [
                  ["prompt", '"a fox"'],
                  [key, value],
                ],
          ),
        ),
    ),
  },
  "number-literals": {
    weight: 8,
    body: textBody(
      fc
        .tuple(
          fc.constantFrom("n", "seed", "output_compression", "partial_images", "prompt"),
          hugeNumberLiteral,
        )
        .map(([field, literal]) =>
          objectText([
            ["prompt", '"a fox"'],
            ["model", '"dall-e-2"'],
            [field, literal],
          ]),
        ),
    ),
  },
  "duplicate-keys": {
    weight: 5,
    body: textBody(
      fc
        .array(fc.tuple(fc.constantFrom("prompt", "n", "model", "size", "stream"), anyJson), {
          minLength: 2,
          maxLength: 6,
        })
        .map((members) => objectText(members.map(([k, v]) => [k, JSON.stringify(v) ?? "null"]))),
    ),
  },
  truncated: {
    weight: 8,
    body: textBody(
      fc
        .tuple(fc.oneof(validRequest, fieldRecord), fc.double({ min: 0, max: 1, noNaN: true }))
        .map(([v, at]) => {
          const text = JSON.stringify(v);
          return text.slice(0, Math.floor(text.length * at));
        }),
    ),
  },
  "random-bytes": {
    weight: 8,
    body: fc
      .array(fc.integer({ min: 0, max: 255 }), { maxLength: 2048 })
      .map((bytes) => ({ kind: "bytes", bytes })),
  },
  "random-text": {
    weight: 3,
    body: textBody(
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.stringMatching(/^[\s{}[\]":,\\0-9a-z.eE+-]{0,80}$/),
      ),
    ),
  },
  "invalid-utf8": {
    weight: 8,
    body: fc
      .tuple(
        validRequest,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(
          [0x80],
          [0xbf],
          [0xc0, 0x80],
          [0xc1, 0xbf],
          [0xc3, 0x28],
          [0xe2, 0x82],
          [0xe0, 0x80, 0xaf],
          [0xed, 0xa0, 0x80],
          [0xed, 0xbf, 0xbf],
          [0xf0, 0x82, 0x82, 0xac],
          [0xf4, 0x90, 0x80, 0x80],
          [0xf5, 0x80, 0x80, 0x80],
          [0xf8, 0x88, 0x80, 0x80, 0x80],
          [0xfe],
          [0xff],
          [0xff, 0xfe],
        ),
        fc.boolean(),
      )
      .map(([v, at, bad, inString]): Body => {
        const text = JSON.stringify(v);
        // Inside the prompt's value, or anywhere.
        const promptAt = text.indexOf('"prompt":"') + '"prompt":"'.length;
        const pos = inString ? promptAt : Math.floor(text.length * at);
        return { kind: "splice", text, at: pos, bad: [...bad] };
      }),
  },
  "deep-nesting": {
    weight: 4,
    body: fc
      .record({
        where: fc.constantFrom("top", "prompt", "unknown", "model"),
        open: fc.constantFrom("[", '{"a":', '{"prompt":', "[{", '{"__proto__":'),
        depth: fc.oneof(
          fc.integer({ min: 1, max: 100 }),
          fc.constantFrom(10_000, 100_000, 500_000),
        ),
        closed: fc.boolean(),
      })
      .map(({ where, open, depth, closed }): Body => {
        const closer = open === "[" ? "]" : open === "[{" ? "}]" : "}";
        const inner = open === "[" ? "" : "1";
        const close = closed ? closer : "";
        if (where === "top")
          return { kind: "deep", before: "", open, depth, close: `${inner}${close}`, after: "" };
        const key = where === "unknown" ? "nested" : where;
        return {
          kind: "deep",
          before: `{"prompt":"a fox","${key}":`.replace(
            /^\{"prompt":"a fox","prompt":/,
            '{"prompt":',
          ),
          open,
          depth,
          close: `${inner}${close}`,
          after: closed ? "}" : "",
        };
      }),
  },
  "huge-strings": {
    weight: 2,
    body: fc
      .record({
        field: fc.constantFrom("prompt", "user", "model", "size", "unknown_field"),
        unit: fc.constantFrom("x", "é", "😀", "\\u0000", "\\\\"),
        length: fc.oneof(
          fc.integer({ min: 1000, max: 200_000 }),
          fc.constantFrom(MAX_BODY - 64, MAX_BODY + 1, 6 * MiB),
        ),
        quote: fc.boolean(),
      })
      .map((r): Body => ({ kind: "huge", ...r })),
  },
  unicode: {
    weight: 5,
    body: fc
      .tuple(
        validRequest,
        fc.constantFrom("prompt", "user", "model", "size"),
        unicodeString,
        fc.boolean(),
      )
      .map(([v, field, s, bom]): Body => {
        const text = JSON.stringify({ ...v, [field]: s });
        return { kind: "text", text: bom ? `\uFEFF${text}` : text };
      }),
  },
};

const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant("application/json") },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-8",
      "Application/JSON",
      "application/vnd.openai+json",
      "application/problem+json; charset=utf-8",
      "application/json;charset=latin1",
      "text/plain",
      "text/json",
      "text/plain; charset=utf-8",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
      "application/octet-stream",
      "application/jsonx",
      "application/xml",
      "*/*",
      "json",
      "",
    ),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

const path = fc.oneof(
  { weight: 30, arbitrary: fc.constant(ROUTE) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      `${ROUTE}?x=1`,
      `${ROUTE}/`,
      "/v1/images/generation",
      "/v1/images/upscale",
      "/v1/IMAGES/generations",
      "/",
      "/v1/images/generations%00",
      "//v1/images/generations",
    ),
  },
);

const requestId = fc.option(
  fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9._:@/+=-]{1,40}$/),
    fc.constantFrom("has space", "x".repeat(129), "é", "a,b", "{}", "req id\t2"),
  ),
  { nil: undefined, freq: 3 },
);

function caseArb(): fc.Arbitrary<Case> {
  return fc.oneof(
    ...Object.entries(families).map(([family, { weight, body }]) => ({
      weight,
      arbitrary: fc
        .record({
          transport: fc.constantFrom("h1" as const, "h2" as const),
          contentType,
          path,
          requestId,
          body,
        })
        .map((c): Case => ({ family, ...c })),
    })),
  );
}

// ---------------------------------------------------------------------------------------------
// Bytes from a recipe, and the independent judgement of what the answer must be.
// ---------------------------------------------------------------------------------------------

function bytesOf(body: Body): Buffer {
  switch (body.kind) {
    case "json":
      return Buffer.from(JSON.stringify(body.value) ?? "", "utf8");
    case "text":
      return Buffer.from(body.text, "utf8");
    case "bytes":
      return Buffer.from(body.bytes);
    case "splice": {
      const text = Buffer.from(body.text, "utf8");
      const at = Math.min(body.at, text.length);
      return Buffer.concat([text.subarray(0, at), Buffer.from(body.bad), text.subarray(at)]);
    }
    case "deep":
      return Buffer.from(
        body.before + body.open.repeat(body.depth) + body.close.repeat(body.depth) + body.after,
        "utf8",
      );
    case "huge": {
      const q = body.quote ? '"' : "";
      const value = body.unit
        .repeat(Math.ceil(body.length / body.unit.length))
        .slice(0, body.length);
      return Buffer.from(
        `{"prompt":"a fox","${body.field}":${q}${value}${q}}`.replace(
          '{"prompt":"a fox","prompt":',
          '{"prompt":',
        ),
        "utf8",
      );
    }
  }
}

type Expected =
  | { status: 404 }
  | { status: 413 }
  | { status: 400; message: RegExp; param?: string }
  /** A well-typed request: a 2xx, or a 4xx from the catalog or the provider. */
  | { status: "valid" };

function isJsonMediaType(contentType: string | null): boolean {
  const media = (contentType ?? "").split(";", 1)[0]!.trim().toLowerCase();
  return media === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(media);
}

function typeError(name: string, value: unknown): boolean {
  switch (FIELDS[name]) {
    case "string":
      // An unpaired surrogate (`"\ud800"`) is valid JSON but not Unicode text.
      return typeof value !== "string" || /\p{Cs}/u.test(value);
    case "bool":
      return typeof value !== "boolean";
    case "int32":
      return !(
        Number.isInteger(value) &&
        (value as number) >= -(2 ** 31) &&
        (value as number) < 2 ** 31
      );
    case "uint32":
      return !(Number.isInteger(value) && (value as number) >= 0 && (value as number) < 2 ** 32);
    default:
      return true;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function expected(c: Case, bytes: Buffer): Expected {
  if (c.path.split("?", 1)[0] !== ROUTE) return { status: 404 };
  if (!isJsonMediaType(c.contentType)) return { status: 400, message: /Content-Type/ };
  if (bytes.length > MAX_BODY) return { status: 413 };
  let text: string;
  try {
    // A leading byte order mark is dropped (RFC 8259 allows a parser to ignore it).
    text = strictUtf8.decode(bytes);
  } catch {
    return { status: 400, message: /not valid UTF-8/ };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { status: 400, message: /could not parse the JSON body/ };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { status: 400, message: /must be a JSON object/ };
  }
  for (const [key, v] of Object.entries(value)) {
    if (!Object.hasOwn(FIELDS, key))
      return { status: 400, message: /Unrecognized request argument/, param: key };
    if (v !== null && typeError(key, v))
      return { status: 400, message: /Invalid (type for )?'/, param: key };
  }
  return { status: "valid" };
}

function check(c: Case, answer: RawAnswer, exp: Expected): void {
  const sentId = c.requestId;
  const gotId = answer.headers.get("x-request-id");
  if (gotId === null) throw new Error(`no x-request-id (HTTP ${answer.status})`);
  if (sentId !== undefined && ECHOED_REQUEST_ID.test(sentId) && gotId !== sentId) {
    throw new Error(`x-request-id ${sentId} was not echoed (got ${gotId})`);
  }
  if (answer.status >= 200 && answer.status < 300) {
    if (exp.status !== "valid")
      throw new Error(`HTTP ${answer.status} for a body that should be a ${exp.status}`);
    const json = JSON.parse(answer.body.toString("utf8")) as {
      data?: unknown[];
      created?: unknown;
    };
    if (!Array.isArray(json.data) || json.data.length === 0 || typeof json.created !== "number") {
      throw new Error(`a 2xx without images: ${answer.body.toString("utf8").slice(0, 200)}`);
    }
    return;
  }
  if (answer.status < 400 || answer.status >= 500)
    throw new Error(`HTTP ${answer.status}: ${answer.body.toString("utf8").slice(0, 300)}`);
  const error = assertOpenAIError(answer);
  if (exp.status === "valid") return;
  if (answer.status !== exp.status) {
    throw new Error(
      `expected HTTP ${exp.status}, got ${answer.status}: ${error.message.slice(0, 200)}`,
    );
  }
  if (exp.status === 413 && error.code !== "request_too_large")
    throw new Error(`413 with code ${error.code}`);
  if (exp.status === 404 && error.code !== "unknown_url")
    throw new Error(`404 with code ${error.code}`);
  if (exp.status === 400) {
    if (!exp.message.test(error.message))
      throw new Error(
        `400 message ${JSON.stringify(error.message.slice(0, 200))} does not match ${exp.message}`,
      );
    if (exp.param !== undefined && error.param !== exp.param) {
      throw new Error(
        `400 names param ${JSON.stringify(error.param)}, expected ${JSON.stringify(exp.param)}`,
      );
    }
    if (error.type !== "invalid_request_error") throw new Error(`400 with type ${error.type}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

let stack: Stack;
let client: RawClient;

beforeAll(async () => {
  // Upstream failures must not cool the one deployment down for the cases after them.
  stack = await startStack({
    yaml: "router_settings:\n  num_retries: 0\n  allowed_fails: 100000\n  cooldown_time: 0\n",
  });
  client = new RawClient(stack.url);
});

afterAll(async () => {
  client?.close();
  await stack?.close();
});

interface Tally {
  families: Map<string, number>;
  statuses: Map<number, number>;
  bytes: number;
}

async function runCase(c: Case, tally: Tally): Promise<void> {
  const bytes = bytesOf(c.body);
  const exp = expected(c, bytes);
  const req: RawPost = {
    transport: c.transport,
    path: c.path,
    contentType: c.contentType,
    body: bytes,
    ...(c.requestId === undefined ? {} : { headers: { "x-request-id": c.requestId } }),
  };
  const answer = await client.post(req);
  tally.families.set(c.family, (tally.families.get(c.family) ?? 0) + 1);
  tally.statuses.set(answer.status, (tally.statuses.get(answer.status) ?? 0) + 1);
  tally.bytes += bytes.length;
  check(c, answer, exp);
}

function describeCase(c: Case): string {
  const bytes = bytesOf(c.body);
  const shown =
    bytes.length > 300
      ? `${bytes.subarray(0, 300).toString("utf8")}… (${bytes.length} bytes)`
      : bytes.toString("utf8");
  return `${c.family} ${c.transport} ${c.path} content-type=${JSON.stringify(c.contentType)} body=${JSON.stringify(shown)}`;
}

/**
 * Cases this fuzz once shrank a failure to; they run first on every seed.
 * - An unpaired surrogate escape passed the field check and failed in protobuf's JSON
 *   decoding, with a message that named no field and without echoing `x-request-id`.
 */
const REGRESSIONS: [Case][] = [
  [
    {
      family: "unicode",
      transport: "h1",
      contentType: "application/json",
      path: ROUTE,
      requestId: ":",
      body: { kind: "text", text: '{"prompt":"\\ud800","model":"dall-e-2","size":"256x256"}' },
    },
  ],
  [
    {
      family: "unicode",
      transport: "h2",
      contentType: "application/json",
      path: ROUTE,
      requestId: "abc",
      body: { kind: "json", value: { prompt: "a fox", user: "\udfff\ud83d\ude00" } },
    },
  ],
];

async function fuzz(seed: number, numRuns: number): Promise<Tally> {
  const tally: Tally = { families: new Map(), statuses: new Map(), bytes: 0 };
  await fc.assert(
    fc.asyncProperty(caseArb(), async (c) => {
      try {
        await runCase(c, tally);
      } catch (e) {
        throw new Error(`${(e as Error).message}\n  case: ${describeCase(c)}`);
      }
    }),
    { seed, numRuns, examples: REGRESSIONS },
  );
  return tally;
}

/** Well-formed requests that succeed: the fuzz rarely produces one, and a leak per upstream call hides there. */
async function successes(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const answer = await client.post({
      transport: i % 2 === 0 ? "h1" : "h2",
      path: ROUTE,
      contentType: "application/json",
      body: Buffer.from(
        JSON.stringify({
          model: "dall-e-2",
          prompt: `a fox, take ${i}`,
          size: "256x256",
          response_format: i % 4 < 2 ? "b64_json" : "url",
        }),
      ),
    });
    if (answer.status !== 200)
      throw new Error(`HTTP ${answer.status}: ${answer.body.toString("utf8").slice(0, 300)}`);
  }
}

/** The emulator logs every request it serves; that log is test scaffolding, not the gateway's memory. */
function clearEmulatorLog(): void {
  stack.openai.requests.length = 0;
}

describe("REST fuzz", () => {
  it(`answers ${RUNS} malformed bodies with the contract's 4xx, stays up, and returns to its baseline heap`, {
    timeout: 180_000,
  }, async () => {
    console.log(`fuzz-rest: seed ${SEED}, ${RUNS} cases (FUZZ_SEED / FUZZ_RUNS to change)`);
    // Warm up with other cases (code paths compiled, pools and caches filled), then measure.
    await fuzz(SEED + 1, WARMUP_RUNS);
    await successes(200);
    clearEmulatorLog();
    const baseline = await settledHeapUsed();

    const started = performance.now();
    const tally = await fuzz(SEED, RUNS);
    const seconds = (performance.now() - started) / 1000;
    await successes(SUCCESS_RUNS);

    // Still up and still serving, over both transports.
    for (const transport of ["h1", "h2"] as const) {
      const health = await client.get("/healthz", transport);
      expect(health.status).toBe(200);
    }
    await successes(2);
    // Prototype-pollution keys were data, never assignments.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    clearEmulatorLog();
    const after = await settledHeapUsed();
    const growth = after - baseline;
    console.log(
      [
        `fuzz-rest: ${RUNS} cases in ${seconds.toFixed(1)} s, ${(tally.bytes / MiB).toFixed(1)} MiB sent; then ${SUCCESS_RUNS} successful requests`,
        `  families: ${[...tally.families].map(([f, n]) => `${f} ${n}`).join(", ")}`,
        `  statuses: ${[...tally.statuses]
          .sort(([a], [b]) => a - b)
          .map(([s, n]) => `${s}×${n}`)
          .join(", ")}`,
        `  heapUsed: baseline ${(baseline / MiB).toFixed(1)} MiB, after ${(after / MiB).toFixed(1)} MiB (${growth >= 0 ? "+" : ""}${(growth / MiB).toFixed(2)} MiB)`,
      ].join("\n"),
    );
    // Measurement noise is about ±1.5 MiB; 2 KiB held per request would be 12 MiB here.
    expect(growth).toBeLessThan(4 * MiB);
  });
});
