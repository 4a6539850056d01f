/**
 * Load generators: autocannon (as a library) for HTTP/1.1, a grpc-js loop for gRPC. Both are
 * closed-loop (each connection or worker sends its next request when the last one is
 * answered), bounded by a request count and a time limit, and report the same figures.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import autocannon from "autocannon";
import { Pool } from "undici";
import { CreateImageRequestSchema } from "../src/gen/imagegate/v1/images_pb.js";

export interface LoadResult {
  /** 2xx responses (gRPC: OK) completed before the time limit. */
  ok: number;
  /** Completed with another status. */
  failed: number;
  /** Transport errors and timeouts. */
  errors: number;
  /** Status → count, of the failed ones. */
  statuses: Record<string, number>;
  firstError: string | undefined;
  /** From the first request to the last answer (or to the time limit). */
  elapsedMs: number;
  /** ok / elapsed. */
  rps: number;
  /** Latency of the ok answers, ms. */
  p50Ms: number;
  p99Ms: number;
  /** Response bytes of the ok answers (HTTP: with headers; gRPC: the message). */
  bytes: number;
  timedOut: boolean;
  /** Streams (`streamLoad`): median time from sending a request to its answer's first body bytes (its first event). */
  firstEventP50Ms?: number;
}

export interface HttpLoadOptions {
  url: string;
  headers: Record<string, string>;
  /** The same bytes for every request (a multipart upload: a Buffer). */
  body: string | Buffer;
  connections: number;
  /** Requests in all; at least `connections`. */
  amount: number;
  maxSeconds: number;
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarise(
  latencies: number[],
  base: Omit<LoadResult, "rps" | "p50Ms" | "p99Ms">,
): LoadResult {
  const sorted = Float64Array.from(latencies).sort();
  return {
    ...base,
    rps: base.elapsedMs > 0 ? (base.ok * 1000) / base.elapsedMs : 0,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
  };
}

/**
 * autocannon with `amount` requests over `connections` keep-alive connections. Latencies come
 * from its per-response event (fractional ms; its own histogram rounds to whole ms).
 */
export function httpLoad(o: HttpLoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let ok = 0;
    let failed = 0;
    let errors = 0;
    let bytes = 0;
    let firstError: string | undefined;
    let stoppedAt: number | undefined;
    const started = performance.now();
    let last = started;
    const options = {
      url: o.url,
      method: "POST" as const,
      headers: o.headers,
      body: o.body,
      connections: o.connections,
      amount: Math.max(o.amount, o.connections),
      timeout: 30,
      // How often autocannon looks at its stop flag: the run ends this soon after the last answer.
      sampleInt: 20,
    };
    const instance = autocannon(options, (err) => {
      clearTimeout(timer);
      if (err) return reject(err);
      const end = stoppedAt ?? last;
      resolve(
        summarise(latencies, {
          ok,
          failed,
          errors,
          statuses,
          firstError,
          elapsedMs: end - started,
          bytes,
          timedOut: stoppedAt !== undefined,
        }),
      );
    });
    instance.on("response", (_client, statusCode, resBytes, responseTime) => {
      if (stoppedAt !== undefined) return;
      last = performance.now();
      if (statusCode >= 200 && statusCode < 300) {
        ok += 1;
        bytes += resBytes;
        latencies.push(responseTime);
      } else {
        failed += 1;
        statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      }
    });
    instance.on("reqError", (err: unknown) => {
      if (stoppedAt !== undefined) return;
      errors += 1;
      firstError ??= String(err);
    });
    const timer = setTimeout(() => {
      stoppedAt = performance.now();
      instance.stop();
    }, o.maxSeconds * 1000);
  });
}

export interface GrpcTarget {
  /** host:port */
  address: string;
  model: string;
  size: string;
}

/** The CreateImage request for a target, serialised once (the loop sends the same bytes). */
export function grpcRequestBytes(t: GrpcTarget): Buffer {
  const req = create(CreateImageRequestSchema, {
    model: t.model,
    prompt: "a lighthouse at dusk",
    size: t.size,
    responseFormat: "b64_json",
  });
  return Buffer.from(toBinary(CreateImageRequestSchema, req));
}

export const CREATE_IMAGE_PATH = "/imagegate.v1.ImageService/CreateImage";

/**
 * A gRPC message as it goes on the wire: uncompressed flag, 4-byte length, the message.
 * Framed here rather than by connect-es's `encodeEnvelope`: its internals are imported by
 * src/server/connect-internals.ts alone (test/architecture/connect-internals.test.ts).
 */
export function grpcEnvelope(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
const identity = (b: Buffer) => b;

export function grpcChannel(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    "grpc-node.flow_control_window": 16 * 1024 * 1024,
  });
}

/** One unary CreateImage call; the response stays undecoded bytes (the load generator's cost stays low). */
export function grpcCall(
  client: grpc.Client,
  request: Buffer,
): { done: Promise<Buffer>; cancel(): void } {
  let call: grpc.ClientUnaryCall | undefined;
  const done = new Promise<Buffer>((resolve, reject) => {
    call = client.makeUnaryRequest(
      CREATE_IMAGE_PATH,
      identity,
      identity,
      request,
      new grpc.Metadata(),
      {},
      (err, res) => {
        if (err) reject(err);
        else resolve(res!);
      },
    );
  });
  return { done, cancel: () => call?.cancel() };
}

export interface GrpcLoadOptions {
  target: GrpcTarget;
  concurrency: number;
  amount: number;
  maxSeconds: number;
}

/** `concurrency` workers on one HTTP/2 connection (as a gRPC client does), each calling in a loop. */
export async function grpcLoad(o: GrpcLoadOptions): Promise<LoadResult> {
  const client = grpcChannel(o.target.address);
  const request = grpcRequestBytes(o.target);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const inflight = new Set<{ cancel(): void }>();
  let ok = 0;
  let failed = 0;
  let bytes = 0;
  let issued = 0;
  let firstError: string | undefined;
  let stoppedAt: number | undefined;
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
  );
  const started = performance.now();
  let last = started;
  const timer = setTimeout(() => {
    stoppedAt = performance.now();
    for (const call of inflight) call.cancel();
  }, o.maxSeconds * 1000);
  const worker = async () => {
    while (stoppedAt === undefined && issued < o.amount) {
      issued += 1;
      const t = performance.now();
      const call = grpcCall(client, request);
      inflight.add(call);
      try {
        const res = await call.done;
        if (stoppedAt !== undefined) break;
        last = performance.now();
        ok += 1;
        bytes += res.length;
        latencies.push(last - t);
      } catch (e) {
        if (stoppedAt !== undefined) break;
        last = performance.now();
        failed += 1;
        const code = (e as grpc.ServiceError).code;
        const key = code === undefined ? "error" : (grpc.status[code] ?? String(code));
        statuses[key] = (statuses[key] ?? 0) + 1;
        firstError ??= (e as Error).message;
      } finally {
        inflight.delete(call);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  clearTimeout(timer);
  client.close();
  return summarise(latencies, {
    ok,
    failed,
    errors: 0,
    statuses,
    firstError,
    elapsedMs: (stoppedAt ?? last) - started,
    bytes,
    timedOut: stoppedAt !== undefined,
  });
}

/**
 * Closed-loop load of a streamed answer (server-sent events) over `connections` keep-alive
 * connections (an undici Pool; autocannon cannot time an answer's first bytes): per
 * request, the time to the first body bytes (the first event: the gateway writes its
 * headers just before it) and to the end of the stream. The body is counted, not kept.
 */
export async function streamLoad(o: HttpLoadOptions): Promise<LoadResult> {
  const url = new URL(o.url);
  const pool = new Pool(url.origin, { connections: o.connections, pipelining: 1 });
  const latencies: number[] = [];
  const firsts: number[] = [];
  const statuses: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let errors = 0;
  let bytes = 0;
  let issued = 0;
  let firstError: string | undefined;
  let stoppedAt: number | undefined;
  const controller = new AbortController();
  const started = performance.now();
  let last = started;
  const timer = setTimeout(() => {
    stoppedAt = performance.now();
    controller.abort();
  }, o.maxSeconds * 1000);
  const amount = Math.max(o.amount, o.connections);
  const worker = async () => {
    while (stoppedAt === undefined && issued < amount) {
      issued += 1;
      const t = performance.now();
      try {
        const res = await pool.request({
          path: url.pathname + url.search,
          method: "POST",
          headers: o.headers,
          body: o.body,
          signal: controller.signal,
        });
        let first: number | undefined;
        let n = 0;
        for await (const chunk of res.body) {
          first ??= performance.now() - t;
          n += (chunk as Buffer).length;
        }
        if (stoppedAt !== undefined) break;
        last = performance.now();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          ok += 1;
          bytes += n;
          latencies.push(last - t);
          if (first !== undefined) firsts.push(first);
        } else {
          failed += 1;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        }
      } catch (e) {
        if (stoppedAt !== undefined) break;
        errors += 1;
        firstError ??= String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  clearTimeout(timer);
  await pool.destroy();
  const result = summarise(latencies, {
    ok,
    failed,
    errors,
    statuses,
    firstError,
    elapsedMs: (stoppedAt ?? last) - started,
    bytes,
    timedOut: stoppedAt !== undefined,
  });
  return { ...result, firstEventP50Ms: percentile(Float64Array.from(firsts).sort(), 50) };
}
