/**
 * Parses an upstream images body (`{"data":[{"b64_json":"…"}]}`) without turning each
 * multi-megabyte base64 image into a JS string for `JSON.parse`: a small scanner finds
 * every `"b64_json":"…"` value's byte range, each is decoded to bytes natively from the
 * body, and only the rest of the body (the values replaced by markers) is JSON-parsed.
 *
 * Anything unusual (an escape inside a value, a character that is not base64, a body
 * the scan does not understand) falls back to parsing the whole body, so the answer is
 * always the one `JSON.parse` would give.
 */
import { randomBytes } from "node:crypto";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const KEY = "b64_json";

/** Unique per process, never sent anywhere: no upstream string can hold one by design. */
const MARKER = `imagegate-b64:${randomBytes(9).toString("base64")}:`;

export interface ParsedImagesBody {
  json: unknown;
  /** Decoded images by the marker string that stands in for their `b64_json` value in `json`. */
  images: ReadonlyMap<string, Buffer>;
}

const NONE: ReadonlyMap<string, Buffer> = new Map();

/** The body's JSON with its `b64_json` values read as bytes; undefined when the body is not JSON. */
export function parseImagesJson(body: Buffer): ParsedImagesBody | undefined {
  const ranges = findB64JsonValues(body);
  if (ranges !== undefined && ranges.length > 0) {
    const images = new Map<string, Buffer>();
    let text = "";
    let from = 0;
    for (const [start, end] of ranges) {
      const bytes = decodeBase64Strict(body, start, end);
      if (bytes === undefined) return parseWhole(body);
      const marker = MARKER + images.size;
      images.set(marker, bytes);
      text += body.toString("utf8", from, start) + marker;
      from = end;
    }
    text += body.toString("utf8", from);
    try {
      return { json: JSON.parse(text), images };
    } catch {
      return parseWhole(body);
    }
  }
  return parseWhole(body);
}

function parseWhole(body: Buffer): ParsedImagesBody | undefined {
  try {
    return { json: JSON.parse(body.toString("utf8")), images: NONE };
  } catch {
    return undefined;
  }
}

/**
 * The byte ranges (between the quotes) of every string value of a `"b64_json"` key, in
 * order; undefined when a value holds a backslash (escapes need the real parser) or the
 * body's strings do not close. Relies on JSON's shape: outside strings there are no
 * quotes, so string boundaries are found by skipping from quote to unescaped quote.
 */
export function findB64JsonValues(body: Buffer): Array<[number, number]> | undefined {
  const ranges: Array<[number, number]> = [];
  let pos = 0;
  for (;;) {
    const open = body.indexOf(QUOTE, pos);
    if (open < 0) return ranges;
    const close = closingQuote(body, open + 1);
    if (close < 0) return undefined;
    pos = close + 1;
    if (close - open - 1 !== KEY.length || body.toString("latin1", open + 1, close) !== KEY) continue;
    let i = skipSpace(body, close + 1);
    if (body[i] !== COLON) continue; // the text "b64_json" as a value, not a key
    i = skipSpace(body, i + 1);
    if (body[i] !== QUOTE) continue; // null, a number…: left to the parser
    const end = body.indexOf(QUOTE, i + 1);
    if (end < 0) return undefined;
    const backslash = body.indexOf(BACKSLASH, i + 1);
    if (backslash >= 0 && backslash < end) return undefined;
    ranges.push([i + 1, end]);
    pos = end + 1;
  }
}

/** The index of the quote closing a string whose content starts at `from`, or -1. */
function closingQuote(body: Buffer, from: number): number {
  let q = body.indexOf(QUOTE, from);
  while (q >= 0) {
    let backslashes = 0;
    while (body[q - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return q;
    q = body.indexOf(QUOTE, q + 1);
  }
  return -1;
}

function skipSpace(body: Buffer, i: number): number {
  for (;;) {
    const c = body[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/**
 * Decodes base64 in `body[start, end)`, or undefined if any character is not base64:
 * Node's decoder skips such characters, so a result shorter than the length implies
 * means the text held something the whole-body parse must judge (a control character
 * JSON forbids, say).
 */
function decodeBase64Strict(body: Buffer, start: number, end: number): Buffer | undefined {
  let n = end - start;
  for (let pad = 0; pad < 2 && n > 0 && body[start + n - 1] === 0x3d; pad++) n--;
  if (n % 4 === 1) return undefined;
  const bytes = Buffer.from(body.toString("latin1", start, end), "base64");
  return bytes.length === Math.floor((n * 3) / 4) ? bytes : undefined;
}
