/**
 * protobuf-es's binary writer, taught to write large `bytes` without copying them around.
 *
 * Why: protobuf-es 2.17's `BinaryWriter` writes into one growing buffer. A 1.5 MB image in
 * an `ImagesResponse` costs: the buffer doubled up to 2 MB (fresh, zero-filled memory, each
 * step copying the last), the image copied in, copied again two bytes up when the enclosing
 * `Image` message's length prefix turns out wider than the one byte `fork()` reserved, and
 * copied a third time by `finish()` into an exact-size result. Those fresh megabytes start
 * V8's full collections (bench/PROFILE.md), and made gRPC slower than REST for images.
 *
 * What changes (the prototype of the one `BinaryWriter` class, so every `toBinary` in the
 * process writes this way, connect-es's included): a chunk of at least `LARGE_CHUNK` bytes
 * given to `raw()` (which `bytes()` and unknown fields use) is not copied into the buffer
 * but remembered with its position; `join()` counts remembered chunks in a fork's length
 * and moves their positions with the bytes it shifts; `finish()` copies the buffer's pieces
 * and the chunks once, into a result of exactly the right size. Without a large chunk
 * nothing differs from the original methods (they run as they are).
 *
 * Output is byte-for-byte protobuf-es's own (test/runtime/protobuf-writer.test.ts compares
 * both writers over fuzzed messages and fuzzed sequences of writer calls). One difference a
 * caller could see: a large chunk is read when `finish()` runs, not when `raw()` does, so
 * changing its bytes in between changes the output. `toBinary` calls `finish()` before it
 * returns, so no message can change meanwhile; code that drives a `BinaryWriter` itself
 * must not change a chunk it handed over before `finish()`.
 *
 * The result's memory: `withResultMemory(allocate, fn)` makes the results of writers that
 * finish with a large chunk inside `fn` (and whatever it awaits) come from `allocate` (the
 * request's pooled memory for a unary RPC, given back once its answer is written), with 5
 * bytes free in front of them: connect-es, patched at install (patches/apply.mjs), writes
 * its gRPC/Connect envelope header there instead of copying the message into a new array.
 *
 * Pinned: installed only on the protobuf-es version it was written against, with the
 * writer's fields it relies on; any other version keeps the original writer and says so.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";
import { BinaryWriter } from "@bufbuild/protobuf/wire";

/** The protobuf-es version whose writer this was written against (and tested on). */
export const PINNED_PROTOBUF_VERSION = "2.17.0";
/** Chunks from this size on are remembered rather than copied into the buffer. */
export const LARGE_CHUNK = 64 * 1024;

/** What `BinaryWriter` keeps, as the methods here use it (protobuf-es 2.17's own fields). */
interface WriterState {
  buffer: Uint8Array;
  pos: number;
  stackPos: number[];
  ensureCapacity(size: number): void;
  uint32(value: number): unknown;
  /** Added here: the remembered large chunks and the buffer positions they go before. */
  largeAt?: number[];
  largeChunks?: Uint8Array[];
  largeBytes?: number;
}

type Allocate = (size: number) => Uint8Array;

/**
 * Kept under global symbols: a second copy of this module in the process (a test runner
 * loads modules once per test file, protobuf-es once) must find protobuf-es's original
 * methods and the same result-memory store, not a copy of its own.
 */
const ORIGINAL_KEY = Symbol.for("imagegate.protobuf-writer.original");
const INSTALLED_KEY = Symbol.for("imagegate.protobuf-writer.installed");
const MEMORY_KEY = Symbol.for("imagegate.protobuf-writer.result-memory");
/** Named by patches/apply.mjs's connect-es patch, which frames a message listed there in place. */
const HEADROOM_KEY = Symbol.for("connectrpc.envelope.headroom");
const shared = globalThis as {
  [MEMORY_KEY]?: AsyncLocalStorage<Allocate>;
  [HEADROOM_KEY]?: WeakSet<Uint8Array>;
};
shared[MEMORY_KEY] ??= new AsyncLocalStorage<Allocate>();
const resultMemory = shared[MEMORY_KEY];
/** Results with 5 free bytes before them that connect-es's envelope may use (once). */
shared[HEADROOM_KEY] ??= new WeakSet<Uint8Array>();
const envelopeHeadroom = shared[HEADROOM_KEY];
const ENVELOPE_HEADER = 5;

/** Runs `fn` with writers' large results taken from `allocate` (see the module comment). */
export function withResultMemory<T>(allocate: Allocate, fn: () => T): T {
  return resultMemory.run(allocate, fn);
}

interface Methods {
  raw(this: WriterState, chunk: Uint8Array): unknown;
  join(this: WriterState): unknown;
  finish(this: WriterState): Uint8Array;
}

const proto = BinaryWriter.prototype as unknown as Methods & {
  [ORIGINAL_KEY]?: Readonly<Methods>;
  [INSTALLED_KEY]?: boolean;
};
/** protobuf-es's own methods, as they were before `installLargeBytesWriter`. */
proto[ORIGINAL_KEY] ??= { raw: proto.raw, join: proto.join, finish: proto.finish };
export const ORIGINAL: Readonly<Methods> = proto[ORIGINAL_KEY];

function raw(this: WriterState, chunk: Uint8Array): unknown {
  if (chunk.length < LARGE_CHUNK) return ORIGINAL.raw.call(this, chunk);
  if (this.largeAt === undefined) {
    this.largeAt = [];
    this.largeChunks = [];
    this.largeBytes = 0;
  }
  this.largeAt.push(this.pos);
  this.largeChunks!.push(chunk);
  this.largeBytes! += chunk.length;
  return this;
}

function join(this: WriterState): unknown {
  const at = this.largeAt;
  // The fork holds no remembered chunk: the original join.
  const forkPos = this.stackPos[this.stackPos.length - 1];
  if (at === undefined || forkPos === undefined || at.length === 0 || at[at.length - 1]! <= forkPos)
    return ORIGINAL.join.call(this);
  this.stackPos.pop();
  // Chunks remembered after fork() have positions past its one reserved byte; earlier ones
  // sit at or before it (positions only grow, and shifts below move the fork's chunks only).
  let first = at.length;
  let inside = 0;
  while (first > 0 && at[first - 1]! > forkPos) {
    first -= 1;
    inside += this.largeChunks![first]!.length;
  }
  const inBuffer = this.pos - forkPos - 1;
  const len = inBuffer + inside;
  let prefix = 1;
  while (len >>> (7 * prefix) !== 0 && prefix < 5) prefix += 1;
  if (prefix > 1) {
    const shift = prefix - 1;
    this.ensureCapacity(shift);
    this.buffer.copyWithin(forkPos + prefix, forkPos + 1, this.pos);
    for (let i = first; i < at.length; i++) at[i]! += shift;
  }
  this.pos = forkPos;
  this.uint32(len);
  this.pos += inBuffer;
  return this;
}

function finish(this: WriterState): Uint8Array {
  const at = this.largeAt;
  if (at === undefined || at.length === 0) return ORIGINAL.finish.call(this);
  const chunks = this.largeChunks!;
  const size = this.pos + this.largeBytes!;
  const allocate = resultMemory.getStore();
  let out: Uint8Array;
  if (allocate === undefined) out = new Uint8Array(size);
  else {
    // 5 bytes reserved in front, for connect-es's envelope (patches/apply.mjs).
    out = allocate(size + ENVELOPE_HEADER).subarray(ENVELOPE_HEADER);
    envelopeHeadroom.add(out);
  }
  const buffer = this.buffer;
  let from = 0;
  let o = 0;
  for (let i = 0; i < at.length; i++) {
    const to = at[i]!;
    if (to > from) {
      out.set(buffer.subarray(from, to), o);
      o += to - from;
      from = to;
    }
    const chunk = chunks[i]!;
    out.set(chunk, o);
    o += chunk.length;
  }
  if (this.pos > from) out.set(buffer.subarray(from, this.pos), o);
  this.pos = 0;
  this.stackPos = [];
  this.largeAt = undefined;
  this.largeChunks = undefined;
  this.largeBytes = undefined;
  return out;
}

/** Why the writer was left as it is, or undefined once it writes large bytes in place. */
export function installLargeBytesWriter(): string | undefined {
  if (proto[INSTALLED_KEY]) return undefined;
  let version: string | undefined;
  try {
    const require = createRequire(import.meta.url);
    const main = require.resolve("@bufbuild/protobuf");
    const pkg = `${main.slice(0, main.lastIndexOf("/dist/"))}/package.json`;
    version = (require(pkg) as { version?: string }).version;
  } catch {
    version = undefined;
  }
  if (version !== PINNED_PROTOBUF_VERSION)
    return `@bufbuild/protobuf ${version ?? "(version unknown)"} is not ${PINNED_PROTOBUF_VERSION}: its binary writer is left as it is`;
  const probe = new BinaryWriter() as unknown as WriterState;
  if (
    !(probe.buffer instanceof Uint8Array) ||
    probe.pos !== 0 ||
    !Array.isArray(probe.stackPos) ||
    typeof probe.ensureCapacity !== "function"
  )
    return `@bufbuild/protobuf ${version}'s binary writer does not keep the fields expected: left as it is`;
  proto.raw = raw;
  proto.join = join;
  proto.finish = finish;
  proto[INSTALLED_KEY] = true;
  return undefined;
}

/** Runs `fn` with protobuf-es's original writer methods (tests compare both). */
export function withOriginalWriter<T>(fn: () => T): T {
  const current = { raw: proto.raw, join: proto.join, finish: proto.finish };
  Object.assign(proto, ORIGINAL);
  try {
    return fn();
  } finally {
    Object.assign(proto, current);
  }
}
