/**
 * Property-based fuzzing of the RPC protocols with random and malformed protobuf:
 * - gRPC through grpc-js with a raw Buffer serializer: random bytes, structured garbage
 *   (random field numbers and wire types, bad lengths, invalid UTF-8, overlong varints,
 *   unterminated groups), mutated valid messages, and valid messages with random values;
 * - Connect unary binary (application/proto) over HTTP/1.1 and h2c, the same bodies;
 * - hand-framed gRPC and gRPC-Web over h2c: random envelope flags, lengths and truncation.
 *
 * Property: every call ends, within the deadline, in a proper status: OK only for a
 * message that decodes, otherwise a defined gRPC code (never UNKNOWN); a message that
 * decodes is judged by the service (INVALID_ARGUMENT / NOT_FOUND with the contract's
 * ErrorInfo and `x-request-id`, or OK), never INTERNAL/UNAVAILABLE. The gateway keeps
 * answering on the same connections and serves a normal call afterwards.
 *
 * Bytes that do not decode as the request message are INVALID_ARGUMENT (HTTP 400 for
 * Connect) with `x-request-id` and ErrorInfo: connect-es answers them before any
 * interceptor, as INTERNAL, and the gateway corrects that on the way out (rpc-fixups.ts).
 *
 * Reproduce: FUZZ_SEED=<seed> FUZZ_RUNS=<n> npx vitest run test/robustness/fuzz-grpc.test.ts
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { errorInfoOf, grpcStatusDetails } from "../support/rpc-status.ts";
import { RawClient } from "../support/robustness.ts";
import { type Stack, startStack } from "../support/stack.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_802);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const PATH = "/imagegate.v1.ImageService/CreateImage";
const DEADLINE_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Message bytes
// ---------------------------------------------------------------------------------------------

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

const tag = (field: number, wireType: number) => varint((BigInt(field) << 3n) | BigInt(wireType));

const STRING_FIELDS = [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 15, 20, 22, 23];
const INT_FIELDS = [3, 12, 13, 14, 21];

const invalidUtf8 = fc.constantFrom(
  [0xc3, 0x28],
  [0x80],
  [0xed, 0xa0, 0x80],
  [0xf5, 0x80],
  [0xff],
  [0xe2, 0x82],
);

/** One field, well- or ill-formed: random numbers and wire types, lengths that lie, bad UTF-8. */
const fieldBytes: fc.Arbitrary<number[]> = fc.oneof(
  // A known string field with invalid UTF-8.
  fc
    .tuple(
      fc.constantFrom(...STRING_FIELDS),
      fc.array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: 8 }),
      invalidUtf8,
    )
    .map(([f, ascii, bad]) => [
      ...tag(f, 2),
      ...varint(BigInt(ascii.length + bad.length)),
      ...ascii,
      ...bad,
    ]),
  // A known field with the wrong wire type.
  fc
    .tuple(
      fc.constantFrom(...STRING_FIELDS, ...INT_FIELDS),
      fc.constantFrom(0, 1, 2, 5),
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 9 }),
    )
    .map(([f, wt, payload]) => [
      ...tag(f, wt),
      ...(wt === 2 ? varint(BigInt(payload.length)) : []),
      ...payload,
    ]),
  // A length prefix longer (or much longer) than what follows.
  fc
    .tuple(
      fc.constantFrom(...STRING_FIELDS),
      fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
    )
    .map(([f, len, payload]) => [...tag(f, 2), ...varint(len), ...payload]),
  // Overlong and maximal varints for the int fields.
  fc
    .tuple(
      fc.constantFrom(...INT_FIELDS),
      fc.oneof(fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }), fc.constant(-1n)),
    )
    .map(([f, v]) => [...tag(f, 0), ...varint(v)]),
  fc
    .constantFrom(...INT_FIELDS)
    .map((f) => [...tag(f, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  // Field numbers out of range (0, past 2^29-1) and groups that never end.
  fc
    .tuple(
      fc.constantFrom(0, 19_000, 536_870_911, 536_870_912, 2 ** 32),
      fc.integer({ min: 0, max: 7 }),
    )
    .map(([f, wt]) => [...tag(f, wt), 0x01]),
  fc.integer({ min: 1, max: 30 }).map((f) => [...tag(f, 3), ...tag(f + 1, 0), 0x01]),
  fc.integer({ min: 1, max: 30 }).map((f) => tag(f, 4)),
  // Unknown fields, well-formed: these decode (proto3 keeps them).
  fc
    .tuple(
      fc.integer({ min: 100, max: 536_870_911 }),
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 16 }),
    )
    .map(([f, payload]) => [...tag(f, 2), ...varint(BigInt(payload.length)), ...payload]),
);

const PLAUSIBLE_MODELS = [
  "dall-e-2",
  "dall-e-3",
  "gpt-image-1",
  "openai/dall-e-2",
  "no-such-model",
  "gemini/x",
  "",
];

/** A well-formed request with random values in every field. */
const randomRequest = fc
  .record(
    {
      prompt: fc.oneof(
        fc.constant("a fox"),
        fc.string({ maxLength: 60 }),
        fc.string({ unit: "grapheme", maxLength: 20 }),
      ),
      model: fc.oneof(fc.constantFrom(...PLAUSIBLE_MODELS), fc.string({ maxLength: 20 })),
      n: fc.oneof(
        fc.integer({ min: -1, max: 3 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      ),
      quality: fc.constantFrom("standard", "hd", "low", "x", ""),
      responseFormat: fc.constantFrom("url", "b64_json", "png"),
      size: fc.oneof(
        fc.constantFrom("256x256", "1024x1024", "auto", "0x0", "99999x99999"),
        fc.string({ maxLength: 12 }),
      ),
      style: fc.constantFrom("vivid", "natural", "x"),
      user: fc.string({ maxLength: 30 }),
      background: fc.constantFrom("transparent", "opaque", "auto"),
      outputFormat: fc.constantFrom("png", "jpeg", "webp", "gif"),
      outputCompression: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      stream: fc.boolean(),
      partialImages: fc.integer({ min: -5, max: 5 }),
      seed: fc.nat({ max: 2 ** 32 - 1 }),
      negativePrompt: fc.string({ maxLength: 20 }),
    },
    { requiredKeys: [] },
  )
  .map((r) => Array.from(toBinary(CreateImageRequestSchema, create(CreateImageRequestSchema, r))));

/** Cheap requests that the service accepts and the emulator answers. */
const validRequest = fc
  .record({
    prompt: fc.string({ minLength: 1, maxLength: 40 }).filter((p) => p.trim() !== ""),
    responseFormat: fc.constantFrom("url", "b64_json"),
  })
  .map((r) =>
    Array.from(
      toBinary(
        CreateImageRequestSchema,
        create(CreateImageRequestSchema, { ...r, model: "dall-e-2", size: "256x256" }),
      ),
    ),
  );

type Mutation =
  | { kind: "flip"; at: number; xor: number }
  | { kind: "cut"; at: number }
  | { kind: "append"; bytes: number[] }
  | { kind: "insert"; at: number; bytes: number[] };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("append" as const), bytes: fieldBytes }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fieldBytes }),
);

function mutate(bytes: number[], mutations: Mutation[]): number[] {
  let out = [...bytes];
  for (const m of mutations) {
    const at =
      out.length === 0
        ? 0
        : (m as { at?: number }).at === undefined
          ? 0
          : (m as { at: number }).at % (out.length + 1);
    if (m.kind === "flip" && out.length > 0) out[at % out.length]! ^= m.xor;
    else if (m.kind === "cut") out = out.slice(0, at);
    else if (m.kind === "append") out = [...out, ...m.bytes];
    else if (m.kind === "insert") out = [...out.slice(0, at), ...m.bytes, ...out.slice(at)];
  }
  return out;
}

const messageBytes: fc.Arbitrary<{ family: string; bytes: number[] }> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .array(fc.integer({ min: 0, max: 255 }), { maxLength: 512 })
      .map((bytes) => ({ family: "random-bytes", bytes })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(randomRequest, fc.array(fieldBytes, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([base, extra, before]) => ({
        family: "structured-garbage",
        bytes: before ? [...extra.flat(), ...base] : [...base, ...extra.flat()],
      })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.oneof(randomRequest, validRequest),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
      )
      .map(([base, ms]) => ({ family: "mutated", bytes: mutate(base, ms) })),
  },
  { weight: 2, arbitrary: randomRequest.map((bytes) => ({ family: "random-values", bytes })) },
  { weight: 1, arbitrary: validRequest.map((bytes) => ({ family: "valid", bytes })) },
);

function decodes(bytes: Uint8Array): boolean {
  try {
    fromBinary(CreateImageRequestSchema, bytes);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

const identity = (b: Buffer) => b;
const RawImageClient = grpc.makeGenericClientConstructor(
  {
    createImage: {
      path: PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  "ImageService",
);

interface GrpcAnswer {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
  /** The ErrorInfo reason and domain, when the server sent one. */
  reason?: string;
  domain?: string;
  ms: number;
}

let stack: Stack;
let rawGrpc: grpc.Client;
let raw: RawClient;
let h2: http2.ClientHttp2Session;

beforeAll(async () => {
  stack = await startStack({
    yaml: "router_settings:\n  num_retries: 0\n  allowed_fails: 100000\n  cooldown_time: 0\n",
  });
  rawGrpc = new RawImageClient(
    `127.0.0.1:${stack.gateway.port}`,
    grpc.credentials.createInsecure(),
  );
  raw = new RawClient(stack.url);
  h2 = h2Session();
});

/**
 * The hand-framed calls' HTTP/2 session, opened again if the gateway closed it: on a busy
 * machine the tests before them can outlast its idle timeout (65 s).
 */
function h2Session(): http2.ClientHttp2Session {
  if (h2 !== undefined && !h2.closed && !h2.destroyed) return h2;
  h2 = http2.connect(stack.url);
  h2.on("error", () => {});
  return h2;
}

afterAll(async () => {
  rawGrpc?.close();
  raw?.close();
  h2?.close();
  await stack?.close();
});

function grpcCall(bytes: Uint8Array): Promise<GrpcAnswer> {
  const started = performance.now();
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    const call = (
      rawGrpc as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>
    ).createImage!.call(
      rawGrpc,
      Buffer.from(bytes),
      new grpc.Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
      (err: grpc.ServiceError | null) => {
        const ms = performance.now() - started;
        if (err === null)
          return resolve({ code: grpc.status.OK, details: "", metadata: headers, ms });
        const info = (() => {
          const status = grpcStatusDetails(err);
          return status && errorInfoOf(status);
        })();
        const metadata = headers.clone();
        metadata.merge(err.metadata ?? new grpc.Metadata());
        resolve({
          code: err.code,
          details: err.details,
          metadata,
          ...(info === undefined ? {} : { reason: info.reason, domain: info.domain }),
          ms,
        });
      },
    );
    call.on("metadata", (md: grpc.Metadata) => {
      headers = md;
    });
  });
}

/** Codes the service itself may answer a decodable request with (the contract's table). */
const SERVICE_CODES = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
]);

function checkGrpc(bytes: Uint8Array, a: GrpcAnswer): void {
  if (a.ms > DEADLINE_MS) throw new Error(`took ${a.ms} ms`);
  if (a.code === grpc.status.UNKNOWN || a.code === grpc.status.DEADLINE_EXCEEDED)
    throw new Error(`status ${grpc.status[a.code]}: ${a.details}`);
  if (decodes(bytes)) {
    if (!SERVICE_CODES.has(a.code))
      throw new Error(`a decodable request got ${grpc.status[a.code]}: ${a.details}`);
    if (a.metadata.get("x-request-id").length === 0)
      throw new Error(`no x-request-id (${grpc.status[a.code]})`);
    if (a.code !== grpc.status.OK && a.domain !== "imagegate")
      throw new Error(`no ErrorInfo on ${grpc.status[a.code]}: ${a.details}`);
    return;
  }
  // Undecodable: the client's mistake, answered like every other error.
  if (a.code !== grpc.status.INVALID_ARGUMENT)
    throw new Error(`undecodable bytes got ${grpc.status[a.code]}: ${a.details}`);
  if (a.metadata.get("x-request-id").length === 0)
    throw new Error("no x-request-id on undecodable bytes");
}

interface ConnectAnswer {
  status: number;
  contentType: string;
  code: string | undefined;
  message: string;
  errorInfo: boolean;
  requestId: string | null;
}

async function connectCall(bytes: Uint8Array, transport: "h1" | "h2"): Promise<ConnectAnswer> {
  const a = await raw.post(
    {
      transport,
      path: PATH,
      contentType: "application/proto",
      body: bytes,
      headers: { "connect-protocol-version": "1" },
    },
    DEADLINE_MS,
  );
  const contentType = a.headers.get("content-type") ?? "";
  let code: string | undefined;
  let message = "";
  let errorInfo = false;
  if (a.status !== 200) {
    const json = JSON.parse(a.body.toString("utf8")) as {
      code?: string;
      message?: string;
      details?: { type?: string; value?: string }[];
    };
    code = json.code;
    message = json.message ?? "";
    errorInfo = (json.details ?? []).some(
      (d) => d.type === ErrorInfoSchema.typeName && d.value !== undefined,
    );
  }
  return {
    status: a.status,
    contentType,
    code,
    message,
    errorInfo,
    requestId: a.headers.get("x-request-id"),
  };
}

const CONNECT_SERVICE_CODES = new Map([
  ["invalid_argument", 400],
  ["not_found", 404],
]);

function checkConnect(bytes: Uint8Array, a: ConnectAnswer): void {
  if (a.status === 200) {
    if (!decodes(bytes)) throw new Error("200 for bytes that do not decode");
    if (a.contentType !== "application/proto")
      throw new Error(`200 with content-type ${a.contentType}`);
    return;
  }
  if (!a.contentType.startsWith("application/json"))
    throw new Error(`error with content-type ${a.contentType}`);
  if (decodes(bytes)) {
    if (CONNECT_SERVICE_CODES.get(a.code ?? "") !== a.status)
      throw new Error(`a decodable request got ${a.status} ${a.code}: ${a.message}`);
    if (!a.errorInfo) throw new Error(`no ErrorInfo detail on ${a.code}`);
    if (a.requestId === null) throw new Error(`no x-request-id on ${a.code}`);
    return;
  }
  if (!(a.status === 400 && a.code === "invalid_argument")) {
    throw new Error(`undecodable bytes got ${a.status} ${a.code}: ${a.message}`);
  }
  if (a.requestId === null) throw new Error("no x-request-id on undecodable bytes");
}

// ---------------------------------------------------------------------------------------------
// Hand-framed gRPC / gRPC-Web over h2c
// ---------------------------------------------------------------------------------------------

interface Framing {
  contentType: "application/grpc" | "application/grpc+proto" | "application/grpc-web+proto";
  frames: { flag: number; declared: number | "actual"; payload: number[] }[];
  cut: number | undefined;
  encoding: string | undefined;
  timeout: string | undefined;
}

const framing: fc.Arbitrary<Framing> = fc.record({
  contentType: fc.constantFrom(
    "application/grpc" as const,
    "application/grpc+proto" as const,
    "application/grpc-web+proto" as const,
  ),
  frames: fc.oneof(
    // One well-formed frame around any message bytes.
    messageBytes.map((m) => [{ flag: 0, declared: "actual" as const, payload: m.bytes }]),
    fc.array(
      fc.record({
        flag: fc.oneof(
          fc.constant(0),
          fc.constantFrom(1, 0x80, 0x81, 0xff),
          fc.integer({ min: 0, max: 255 }),
        ),
        declared: fc.oneof(
          fc.constant("actual" as const),
          fc.nat({ max: 64 }),
          fc.constantFrom(2 ** 32 - 1, 4 * 1024 * 1024 + 1),
        ),
        payload: fc.oneof(
          messageBytes.map((m) => m.bytes),
          fc.constant<number[]>([]),
        ),
      }),
      { maxLength: 3 },
    ),
  ),
  cut: fc.option(fc.nat({ max: 64 }), { nil: undefined }),
  encoding: fc.option(fc.constantFrom("gzip", "identity", "br", "zstd", "deflate"), {
    nil: undefined,
    freq: 4,
  }),
  timeout: fc.option(fc.constantFrom("1S", "100m", "99999999999S", "-1S", "1x", "", "5M"), {
    nil: undefined,
    freq: 4,
  }),
});

function framed(f: Framing): Buffer {
  const parts: Buffer[] = [];
  for (const frame of f.frames) {
    const head = Buffer.alloc(5);
    head[0] = frame.flag;
    head.writeUInt32BE(frame.declared === "actual" ? frame.payload.length : frame.declared, 1);
    parts.push(head, Buffer.from(frame.payload));
  }
  const all = Buffer.concat(parts);
  return f.cut === undefined ? all : all.subarray(0, Math.max(0, all.length - f.cut));
}

interface FramedAnswer {
  httpStatus: number;
  grpcStatus: number | undefined;
  ms: number;
}

function framedCall(f: Framing): Promise<FramedAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": PATH,
      "content-type": f.contentType,
      te: "trailers",
    };
    if (f.encoding !== undefined) headers["grpc-encoding"] = f.encoding;
    if (f.timeout !== undefined) headers["grpc-timeout"] = f.timeout;
    const stream = h2Session().request(headers, { signal: AbortSignal.timeout(DEADLINE_MS) });
    let httpStatus = 0;
    let grpcStatus: number | undefined;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      httpStatus = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
    });
    stream.on("trailers", (t) => {
      if (t["grpc-status"] !== undefined) grpcStatus = Number(t["grpc-status"]);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      if (grpcStatus === undefined && f.contentType === "application/grpc-web+proto") {
        // gRPC-Web: the trailers are the last frame of the body (flag 0x80).
        const text = Buffer.concat(chunks).toString("latin1");
        const m = /grpc-status:\s*(\d+)/.exec(text);
        if (m) grpcStatus = Number(m[1]);
      }
      resolve({ httpStatus, grpcStatus, ms: performance.now() - started });
    });
    stream.on("error", reject);
    stream.end(framed(f));
  });
}

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function show(map: Map<string, number>): string {
  return [...map]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
}

const hex = (bytes: number[]) => Buffer.from(bytes).toString("hex");

describe("gRPC and Connect fuzz", () => {
  it(`grpc-js: ${RUNS} random and malformed messages end in a proper status`, {
    timeout: 120_000,
  }, async () => {
    console.log(
      `fuzz-grpc: seed ${SEED}, ${RUNS} cases per property (FUZZ_SEED / FUZZ_RUNS to change)`,
    );
    const families = new Map<string, number>();
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(messageBytes, async ({ family, bytes }) => {
        const body = Uint8Array.from(bytes);
        const answer = await grpcCall(body);
        tally(families, family);
        tally(codes, grpc.status[answer.code]!);
        try {
          checkGrpc(body, answer);
        } catch (e) {
          throw new Error(`${(e as Error).message}\n  ${family} bytes: ${hex(bytes)}`);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`fuzz-grpc (grpc-js): families: ${show(families)}\n  codes: ${show(codes)}`);
    expect(codes.get("OK") ?? 0).toBeGreaterThan(0);
  });

  it(`Connect binary: ${RUNS} random and malformed messages end in a proper status`, {
    timeout: 120_000,
  }, async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        messageBytes,
        fc.constantFrom("h1" as const, "h2" as const),
        async ({ family, bytes }, transport) => {
          const body = Uint8Array.from(bytes);
          const answer = await connectCall(body, transport);
          tally(codes, `${answer.status}${answer.code === undefined ? "" : ` ${answer.code}`}`);
          try {
            checkConnect(body, answer);
          } catch (e) {
            throw new Error(
              `${(e as Error).message}\n  ${family} over ${transport}, bytes: ${hex(bytes)}`,
            );
          }
        },
      ),
      { seed: SEED + 1, numRuns: RUNS },
    );
    console.log(`fuzz-grpc (Connect binary): ${show(codes)}`);
  });

  it(`hand-framed gRPC and gRPC-Web: ${RUNS} bad envelopes each end with a grpc-status`, {
    timeout: 120_000,
  }, async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(framing, async (f) => {
        const answer = await framedCall(f);
        tally(
          codes,
          answer.grpcStatus === undefined
            ? `HTTP ${answer.httpStatus}`
            : grpc.status[answer.grpcStatus]!,
        );
        const where = `${f.contentType} encoding=${f.encoding} timeout=${f.timeout} body=${framed(f).toString("hex").slice(0, 400)}`;
        if (answer.httpStatus !== 200) throw new Error(`HTTP ${answer.httpStatus}: ${where}`);
        if (answer.grpcStatus === undefined || !(answer.grpcStatus in grpc.status))
          throw new Error(`no valid grpc-status: ${where}`);
        if (answer.grpcStatus === grpc.status.UNKNOWN) throw new Error(`UNKNOWN: ${where}`);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
    console.log(`fuzz-grpc (framing): ${show(codes)}`);
  });

  it("still serves health checks and a normal call on the same connections", async () => {
    const ok = Uint8Array.from(
      toBinary(
        CreateImageRequestSchema,
        create(CreateImageRequestSchema, {
          prompt: "a fox",
          model: "dall-e-2",
          size: "256x256",
          responseFormat: "b64_json",
        }),
      ),
    );
    const answer = await grpcCall(ok);
    expect(answer.code).toBe(grpc.status.OK);
    expect((await connectCall(ok, "h2")).status).toBe(200);
    expect((await raw.get("/healthz")).status).toBe(200);
    const framedOk = await framedCall({
      contentType: "application/grpc",
      frames: [{ flag: 0, declared: "actual", payload: [...ok] }],
      cut: undefined,
      encoding: undefined,
      timeout: undefined,
    });
    expect(framedOk.grpcStatus).toBe(grpc.status.OK);
  });
});

describe("the contract for undecodable protobuf", () => {
  const garbage = Uint8Array.from([0x0a, 0x05, 0x61]); // field 1 claims 5 bytes, 1 follows

  // connect-es answers INTERNAL "parse binary: premature EOF" before the gateway's
  // interceptors run; the gateway turns it into the contract's answer.
  it("gRPC: INVALID_ARGUMENT with x-request-id", async () => {
    const answer = await grpcCall(garbage);
    expect(answer.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(answer.metadata.get("x-request-id")).toHaveLength(1);
  });

  it("Connect: HTTP 400 invalid_argument with x-request-id", async () => {
    const answer = await connectCall(garbage, "h1");
    expect([answer.status, answer.code]).toEqual([400, "invalid_argument"]);
    expect(answer.requestId).not.toBeNull();
  });
});
