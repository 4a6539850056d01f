/**
 * The large-bytes writer (src/runtime/protobuf-writer.ts) against protobuf-es's own: the
 * same bytes for fuzzed sequences of writer calls (nested forks, large and small chunks,
 * every scalar) and for fuzzed messages of the API's schemas, and the result memory.
 */
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ImageStreamEventSchema,
  ImagesResponseSchema,
} from "../../src/gen/imagegate/v1/images_pb.js";
import {
  installLargeBytesWriter,
  LARGE_CHUNK,
  ORIGINAL,
  withOriginalWriter,
  withResultMemory,
} from "../../src/runtime/protobuf-writer.ts";

beforeAll(() => {
  expect(installLargeBytesWriter()).toBeUndefined();
});

/** `size` bytes from a seed (fast-check would build a large array byte by byte). */
function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let s = seed | 1;
  for (let i = 0; i < size; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

const chunkArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: LARGE_CHUNK - 3, max: LARGE_CHUNK + 20_000 }) },
);

type Op =
  | { k: "tag"; no: number; wt: WireType }
  | { k: "uint32"; v: number }
  | { k: "int32"; v: number }
  | { k: "int64"; v: bigint }
  | { k: "sint64"; v: bigint }
  | { k: "fixed64"; v: bigint }
  | { k: "double"; v: number }
  | { k: "float"; v: number }
  | { k: "bool"; v: boolean }
  | { k: "string"; v: string }
  | { k: "bytes"; size: number; seed: number }
  | { k: "raw"; size: number; seed: number }
  | { k: "fork" }
  | { k: "join" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("tag" as const),
    no: fc.integer({ min: 1, max: 536_870_911 }),
    wt: fc.constantFrom(WireType.Varint, WireType.LengthDelimited, WireType.Bit32),
  }),
  fc.record({ k: fc.constant("uint32" as const), v: fc.nat({ max: 0xffffffff }) }),
  fc.record({ k: fc.constant("int32" as const), v: fc.integer() }),
  fc.record({ k: fc.constant("int64" as const), v: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n) }),
  fc.record({ k: fc.constant("sint64" as const), v: fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n) }),
  fc.record({ k: fc.constant("fixed64" as const), v: fc.bigInt(0n, 2n ** 64n - 1n) }),
  fc.record({ k: fc.constant("double" as const), v: fc.double() }),
  fc.record({ k: fc.constant("float" as const), v: fc.float() }),
  fc.record({ k: fc.constant("bool" as const), v: fc.boolean() }),
  fc.record({
    k: fc.constant("string" as const),
    v: fc.oneof(fc.string(), fc.string({ unit: "grapheme" })),
  }),
  fc.record({ k: fc.constant("bytes" as const), size: chunkArb, seed: fc.integer() }),
  fc.record({ k: fc.constant("raw" as const), size: chunkArb, seed: fc.integer() }),
  fc.constant({ k: "fork" as const }),
  fc.constant({ k: "fork" as const }),
  fc.constant({ k: "join" as const }),
);

/** Plays the calls on a writer (joins only open forks, and closes the rest at the end). */
function play(w: BinaryWriter, ops: readonly Op[], chunks: Map<Op, Uint8Array>): Uint8Array {
  let open = 0;
  for (const op of ops) {
    switch (op.k) {
      case "tag":
        w.tag(op.no, op.wt);
        break;
      case "uint32":
      case "int32":
      case "double":
      case "bool":
      case "string":
        (w[op.k] as (v: unknown) => unknown)(op.v);
        break;
      case "float":
        w.float(Math.fround(op.v));
        break;
      case "int64":
      case "sint64":
      case "fixed64":
        w[op.k](op.v);
        break;
      case "bytes":
      case "raw":
        w[op.k](chunks.get(op)!);
        break;
      case "fork":
        w.fork();
        open += 1;
        break;
      case "join":
        if (open > 0) {
          w.join();
          open -= 1;
        }
        break;
    }
  }
  while (open-- > 0) w.join();
  return w.finish();
}

function chunksFor(ops: readonly Op[]): Map<Op, Uint8Array> {
  const m = new Map<Op, Uint8Array>();
  for (const op of ops)
    if (op.k === "bytes" || op.k === "raw") m.set(op, bytesOf(op.size, op.seed));
  return m;
}

describe("the large-bytes writer", () => {
  it("is installed on protobuf-es's writer, and the originals stay reachable", () => {
    expect(BinaryWriter.prototype.raw).not.toBe(ORIGINAL.raw);
    withOriginalWriter(() => expect(BinaryWriter.prototype.raw).toBe(ORIGINAL.raw));
    expect(BinaryWriter.prototype.raw).not.toBe(ORIGINAL.raw);
  });

  it("writes what protobuf-es writes for any sequence of writer calls", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const chunks = chunksFor(ops);
        const expected = withOriginalWriter(() => play(new BinaryWriter(), ops, chunks));
        const w = new BinaryWriter();
        expect(Buffer.from(play(w, ops, chunks)).equals(Buffer.from(expected))).toBe(true);
        // A writer is reusable after finish().
        expect(Buffer.from(play(w, ops, chunks)).equals(Buffer.from(expected))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("widens length prefixes at every varint boundary, nested", () => {
    // Payload lengths around 2^14 and 2^21 (3 and 4 byte prefixes), with the large chunk
    // first, last, or between small writes, one and two forks deep.
    for (const size of [LARGE_CHUNK, 2 ** 21 - 8, 2 ** 21 - 7, 2 ** 21, 2 ** 21 + 5]) {
      const chunk = bytesOf(size, size);
      for (const layout of ["alone", "before", "after", "nested"]) {
        const write = (w: BinaryWriter) => {
          w.tag(2, WireType.LengthDelimited).fork();
          if (layout === "before") w.tag(1, WireType.Varint).uint32(300);
          if (layout === "nested") w.tag(7, WireType.LengthDelimited).fork();
          w.tag(2, WireType.LengthDelimited).bytes(chunk);
          if (layout === "after") w.tag(3, WireType.LengthDelimited).string("after");
          if (layout === "nested") w.join().tag(9, WireType.Varint).bool(true);
          w.join();
          return w.finish();
        };
        const expected = withOriginalWriter(() => write(new BinaryWriter()));
        expect(Buffer.from(write(new BinaryWriter())).equals(Buffer.from(expected))).toBe(true);
      }
    }
  });

  const image = fc
    .record({ size: chunkArb, seed: fc.integer() })
    .map(({ size, seed }) => bytesOf(size, seed));
  const responseArb: fc.Arbitrary<MessageInitShape<typeof ImagesResponseSchema>> = fc.record(
    {
      created: fc.nat({ max: 0xffffffff }),
      data: fc.array(
        fc.record(
          { url: fc.string(), b64Json: image, revisedPrompt: fc.string({ unit: "grapheme" }) },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      background: fc.string(),
      size: fc.constantFrom("1024x1024", "256x256"),
    },
    { requiredKeys: [] },
  );

  it("serializes fuzzed ImagesResponse and ImageStreamEvent messages as protobuf-es does", () => {
    fc.assert(
      fc.property(responseArb, image, fc.boolean(), (init, partial, completed) => {
        const messages = [
          [ImagesResponseSchema, create(ImagesResponseSchema, init)],
          [
            ImageStreamEventSchema,
            create(ImageStreamEventSchema, {
              event: completed
                ? { case: "completed", value: { b64Json: partial, size: "1024x1024" } }
                : { case: "partialImage", value: { b64Json: partial, partialImageIndex: 1 } },
            }),
          ],
        ] as const;
        for (const [schema, message] of messages) {
          const expected = withOriginalWriter(() => toBinary(schema as never, message as never));
          const got = toBinary(schema as never, message as never);
          expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
          expect(fromBinary(schema as never, got)).toEqual(message);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("leaves messages without large bytes to the original methods", () => {
    const s = create(StructSchema, {
      fields: { a: { kind: { case: "stringValue", value: "x".repeat(100_000) } } },
    });
    const expected = withOriginalWriter(() => toBinary(StructSchema, s));
    expect(Buffer.from(toBinary(StructSchema, s)).equals(Buffer.from(expected))).toBe(true);
  });

  it("takes a large result from the memory given, with 5 bytes free before it, and only then", async () => {
    const big = bytesOf(LARGE_CHUNK * 3, 7);
    const msg = create(ImagesResponseSchema, { created: 1, data: [{ b64Json: big }] });
    const sizes: number[] = [];
    const pool = Buffer.alloc(LARGE_CHUNK * 4);
    const allocate = (size: number) => {
      sizes.push(size);
      return pool.subarray(0, size);
    };
    const expected = withOriginalWriter(() => toBinary(ImagesResponseSchema, msg));
    const got = await withResultMemory(allocate, async () => {
      await new Promise((r) => setImmediate(r));
      // A small message is written as before, from protobuf-es's own buffer.
      toBinary(ImagesResponseSchema, create(ImagesResponseSchema, { created: 2 }));
      return toBinary(ImagesResponseSchema, msg);
    });
    expect(sizes).toEqual([expected.length + 5]);
    expect(got.buffer).toBe(pool.buffer);
    expect(got.byteOffset).toBe(5);
    expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
    // Listed for connect-es's envelope (patches/apply.mjs), once.
    const headroom = (globalThis as Record<symbol, WeakSet<Uint8Array>>)[
      Symbol.for("connectrpc.envelope.headroom")
    ]!;
    expect(headroom.has(got)).toBe(true);
    // Outside, a fresh array of its own, not listed.
    const outside = toBinary(ImagesResponseSchema, msg);
    expect(outside.buffer).not.toBe(pool.buffer);
    expect(outside.byteLength).toBe(outside.buffer.byteLength);
    expect(headroom.has(outside)).toBe(false);
  });
});
