/**
 * In-process cost of answering a unary gRPC call with a large image: connect-es's gRPC
 * handler (the gateway's router options) serializing and framing an ImagesResponse of one
 * 1.45 MB image, the body read to the end, with no network. CPU time per call (process
 * CPU, so the garbage collector's threads count), with protobuf-es's own writer and with
 * the large-bytes writer (src/runtime/protobuf-writer.ts), alternating.
 *
 *   node --max-semi-space-size=16 bench/grpc-serialize.ts [--calls 400] [--rounds 3]
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { parseArgs } from "node:util";
import {
  CreateImageRequestSchema,
  ImageService,
  ImagesResponseSchema,
} from "../src/gen/imagegate/v1/images_pb.js";
import { BufferPool } from "../src/runtime/buffer-pool.ts";
import {
  installLargeBytesWriter,
  withOriginalWriter,
  withResultMemory,
} from "../src/runtime/protobuf-writer.ts";
import { noisyPng } from "./emulator.ts";

const { values } = parseArgs({
  options: { calls: { type: "string", default: "400" }, rounds: { type: "string", default: "3" } },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const png = noisyPng();
const pool = new BufferPool();

const router = createConnectRouter({ compressMinBytes: Number.MAX_SAFE_INTEGER });
router.service(ImageService, {
  createImage: (_req, ctx) => {
    // As the gateway does: the decoded image in the call's pooled memory.
    const lease = ctx.values.get(LEASE);
    const img = lease.allocate(png.length);
    png.copy(img);
    return create(ImagesResponseSchema, { created: 1, data: [{ b64Json: img }] });
  },
});
import { createContextKey, createContextValues } from "@connectrpc/connect";
const LEASE = createContextKey(pool.lease());
const handler = router.handlers.find((h) => h.requestPath.endsWith("/CreateImage"))!;
const reqMsg = toBinary(
  CreateImageRequestSchema,
  create(CreateImageRequestSchema, { model: "m", prompt: "p" }),
);
const envelope = new Uint8Array(5 + reqMsg.length);
new DataView(envelope.buffer).setUint32(1, reqMsg.length);
envelope.set(reqMsg, 5);

async function one(pooled: boolean): Promise<number> {
  const lease = pool.lease();
  const run = async () => {
    const res = await handler({
      httpVersion: "2.0",
      method: "POST",
      url: `http://x${handler.requestPath}`,
      header: new Headers({ "content-type": "application/grpc" }),
      body: (async function* () {
        yield envelope;
      })(),
      signal: new AbortController().signal,
      contextValues: createContextValues().set(LEASE, lease),
    });
    let n = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) n += chunk.length;
    return n;
  };
  const n = pooled ? await withResultMemory(lease.allocate, run) : await run();
  lease.release();
  return n;
}

async function measure(kind: "original" | "large-bytes"): Promise<number> {
  const go = async () => {
    const c0 = process.cpuUsage();
    let bytes = 0;
    for (let i = 0; i < calls; i++) bytes += await one(kind === "large-bytes");
    if (bytes < calls * png.length) throw new Error("short answers");
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / calls;
  };
  if (kind === "original") {
    // withOriginalWriter is synchronous; hold the originals across the awaits by hand.
    let result = 0;
    await new Promise<void>((resolve, reject) =>
      withOriginalWriter(() => {
        go().then((r) => {
          result = r;
          resolve();
        }, reject);
      }),
    );
    return result;
  }
  return go();
}

if (installLargeBytesWriter() !== undefined) throw new Error("writer not installed");
const out: Record<string, number[]> = { original: [], "large-bytes": [] };
await measure("large-bytes");
for (let r = 0; r < rounds; r++) {
  for (const kind of ["original", "large-bytes"] as const) out[kind]!.push(await measure(kind));
}
const fmt = (v: number[]) => v.map((x) => x.toFixed(2)).join(", ");
console.log(
  `CPU ms per call: original ${fmt(out.original!)} | large-bytes ${fmt(out["large-bytes"]!)}`,
);
