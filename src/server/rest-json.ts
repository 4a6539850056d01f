/**
 * Protobuf message → JSON bytes, as protobuf-es's `toJson` + `JSON.stringify` would write
 * them, without ever holding a large `bytes` field's base64 in the JSON string: each such
 * field is swapped for a short placeholder, the small remainder is stringified, and the
 * output is assembled in one Buffer with the base64 written from the bytes themselves.
 * A 2 MB image then costs one native base64 encode (in small slices) and one output
 * buffer, instead of a base64 string that `JSON.stringify` scans, copies into the
 * document, and `TextEncoder` encodes.
 */
import { randomBytes } from "node:crypto";
import {
  type DescMessage,
  type JsonWriteOptions,
  type MessageShape,
  ScalarType,
  toJson,
} from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { Allocate } from "../runtime/buffer-pool.ts";

/** Bytes fields shorter than this are left to `toJson`: splicing them would cost more than it saves. */
export const SPLICE_MIN_BYTES = 1024;

/**
 * Placeholders are 15 bytes (20 base64 characters, no padding): 12 random bytes fixed per
 * process and a 3-byte index. The random part never leaves the process, so no string in
 * a message (an upstream's revised prompt, say) can hold one by design or by chance.
 */
const PLACEHOLDER_PREFIX = randomBytes(12);

function placeholder(index: number): Buffer {
  const p = Buffer.alloc(15);
  PLACEHOLDER_PREFIX.copy(p, 0);
  p.writeUIntBE(index, 12, 3);
  return p;
}

/**
 * The JSON encoding of `message` (which this may modify: pass a message of your own). The
 * answer of a message with large bytes fields goes into memory from `allocate`.
 */
export function messageToJsonBytes<Desc extends DescMessage>(
  desc: Desc,
  message: MessageShape<Desc>,
  options?: Partial<JsonWriteOptions>,
  allocate: Allocate = Buffer.allocUnsafe,
): Buffer {
  const large: Uint8Array[] = [];
  swapLargeBytes(reflect(desc, message), large);
  const text = JSON.stringify(toJson(desc, message, options));
  if (large.length === 0) return Buffer.from(text, "utf8");

  // Where each placeholder's base64 sits in the text (as a whole JSON string, quotes included).
  const at = large.map((bytes, index) => {
    const key = `"${placeholder(index).toString("base64")}"`;
    const start = text.indexOf(key);
    if (start < 0) throw new Error("internal: a spliced bytes field is missing from the JSON");
    return { start: start + 1, end: start + key.length - 1, bytes };
  });
  at.sort((a, b) => a.start - b.start);

  let length = Buffer.byteLength(text, "utf8");
  for (const { start, end, bytes } of at) length += base64Length(bytes.byteLength) - (end - start);
  const out = allocate(length);
  let from = 0;
  let off = 0;
  for (const { start, end, bytes } of at) {
    off += out.write(text.slice(from, start), off, "utf8");
    off = writeBase64(out, off, bytes);
    from = end;
  }
  out.write(text.slice(from), off, "utf8");
  return out;
}

/** Encoded in slices of this many bytes (a multiple of 3, so no slice but the last pads). */
const BASE64_SLICE = 48 * 1024;

function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/**
 * Writes `bytes` as base64 into `out` at `off`; returns the new offset. Slice by slice:
 * each slice's string is small and dies young, where one string for a whole image would be
 * a multi-megabyte external allocation, and external allocations are what make V8 start
 * full collections.
 */
function writeBase64(out: Buffer, off: number, bytes: Uint8Array): number {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < buf.length; i += BASE64_SLICE) {
    off += out.write(
      buf.toString("base64", i, Math.min(i + BASE64_SLICE, buf.length)),
      off,
      "latin1",
    );
  }
  return off;
}

/** Replaces every set `bytes` value of at least SPLICE_MIN_BYTES with a placeholder; `large[i]` keeps placeholder i's bytes. */
function swapLargeBytes(msg: ReflectMessage, large: Uint8Array[]): void {
  const swap = (v: Uint8Array) => {
    if (v.byteLength < SPLICE_MIN_BYTES) return v;
    large.push(v);
    return placeholder(large.length - 1);
  };
  for (const field of msg.fields) {
    if (!msg.isSet(field)) continue;
    switch (field.fieldKind) {
      case "scalar":
        if (field.scalar === ScalarType.BYTES) msg.set(field, swap(msg.get(field) as Uint8Array));
        break;
      case "message":
        swapLargeBytes(msg.get(field), large);
        break;
      case "list": {
        const list = msg.get(field);
        for (let i = 0; i < list.size; i++) {
          if (field.listKind === "message") swapLargeBytes(list.get(i) as ReflectMessage, large);
          else if (field.listKind === "scalar" && field.scalar === ScalarType.BYTES)
            list.set(i, swap(list.get(i) as Uint8Array));
        }
        break;
      }
      case "map": {
        const map = msg.get(field);
        for (const [key, value] of map) {
          if (field.mapKind === "message") swapLargeBytes(value as ReflectMessage, large);
          else if (field.mapKind === "scalar" && field.scalar === ScalarType.BYTES)
            map.set(key, swap(value as Uint8Array));
        }
        break;
      }
      case "enum":
        break;
    }
  }
}
