/**
 * Parses an upstream images body (`{"data":[{"b64_json":"…"}]}`) from the chunks it arrived
 * in, without joining them into one Buffer and without turning a multi-megabyte base64 image
 * into one JS string: a small scanner walks the chunks in order, decodes each `"b64_json":"…"`
 * value straight from them into a Buffer of exactly its size (at most 64 KiB of base64 text
 * at a time, young-generation strings), and only the rest of the body, each value replaced by
 * a marker, is JSON-parsed. Which keys hold images is data, so other adapters can name theirs;
 * a key's value may also be a list of images (Bedrock's `"images": ["…", "…"]`).
 *
 * Anything unusual (an escape inside a value, a character that is not base64, a body the
 * scan does not understand) falls back to parsing the whole body, so the answer is always
 * the one `JSON.parse` would give.
 */
import { randomBytes } from "node:crypto";
import type { Allocate } from "../runtime/buffer-pool.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const EQUALS = 0x3d;

/** The keys whose string values are base64 images in OpenAI's (and Azure's) answer. */
export const OPENAI_IMAGE_KEYS: readonly string[] = ["b64_json"];

/** Unique per process, never sent anywhere: no upstream string can hold one by design. */
const MARKER = `imagegate-b64:${randomBytes(9).toString("base64")}:`;

/** Base64 characters decoded per string: a multiple of 4, small enough to stay a young string. */
const PIECE = 64 * 1024;

export interface ParsedImagesBody {
  json: unknown;
  /** Decoded images by the marker string that stands in for their value in `json`. */
  images: DecodedImages;
}

/** Images already decoded, by the marker that stands in for each in the parsed JSON. */
export type DecodedImages = ReadonlyMap<string, Buffer>;
export const NO_IMAGES: DecodedImages = new Map();

/**
 * An image value of the parsed JSON as bytes: the decoded image its marker stands for, or
 * (a body parsed whole) the base64 string decoded now.
 */
export function imageBytes(value: string, decoded: DecodedImages): Buffer {
  return decoded.get(value) ?? Buffer.from(value, "base64");
}

/**
 * The body's JSON with the string values of `keys` (anywhere in it) read as bytes;
 * undefined when the body is not JSON. `body` is the whole body or its chunks in order.
 */
export function parseImagesJson(
  body: Buffer | readonly Buffer[],
  keys: readonly string[] = OPENAI_IMAGE_KEYS,
  allocate: Allocate = Buffer.allocUnsafe,
): ParsedImagesBody | undefined {
  const chunks = Buffer.isBuffer(body) ? [body] : body;
  // A small body (an error, a URL answer, a thumbnail) is cheaper to parse whole.
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  return length < SMALL_BODY ? parseWhole(chunks) : scanImagesJson(chunks, keys, allocate);
}

/** `parseImagesJson` by the scan, whatever the body's size (exported for its tests). */
export function scanImagesJson(
  chunks: readonly Buffer[],
  keys: readonly string[] = OPENAI_IMAGE_KEYS,
  allocate: Allocate = Buffer.allocUnsafe,
): ParsedImagesBody | undefined {
  const scanner = new ImageValueScanner(keys, allocate);
  for (const chunk of chunks) scanner.push(chunk);
  return scanner.end();
}

/** Bodies below this many bytes are parsed whole: the scan pays off only for large images. */
export const SMALL_BODY = 16 * 1024;

// Where the scanner is between chunks.
const OUTSIDE = 0; // outside any string
const IN_STRING = 1; // inside a string that is not an image value
const IN_ESCAPE = 2; // right after a backslash in such a string
const AFTER_KEY = 3; // after a string that names an image key: a colon makes it a key
const AFTER_COLON = 4; // after `"key":`; a quote opens an image value, a bracket a list of them
const IN_IMAGE = 5; // inside an image value
const IN_LIST = 6; // in `"key": [`, before an element: a quote opens an image value
const AFTER_ELEMENT = 7; // after an image value in such a list: a comma, or the closing bracket

/**
 * Walks a JSON body chunk by chunk. Relies on JSON's shape: outside strings there are no
 * quotes, so strings are found by skipping from quote to unescaped quote, and a string
 * followed by a colon is a key. Each image value is decoded when its closing quote arrives.
 * Keeps every chunk (as received, no copy) only for the whole-body fallback; the rest of the
 * body is kept as pieces of them.
 */
class ImageValueScanner {
  /** Where decoded images go (the request's pooled memory, when it has some). */
  readonly #allocate: Allocate;
  readonly #keys: ReadonlySet<string>;
  readonly #keyLengths: ReadonlySet<number>;
  /** The first bytes of the current string, as far as the longest key needs. */
  readonly #key: Buffer;
  readonly #chunks: Buffer[] = [];
  /** The body outside image values, with each value's marker between its quotes. */
  readonly #rest: Buffer[] = [];
  readonly #images = new Map<string, Buffer>();
  #state = OUTSIDE;
  #keyLength = 0;
  #keyPlain = true;
  /** The current image value's pieces (subarrays of chunks) and their total length. */
  #value: Buffer[] = [];
  #valueLength = 0;
  #failed = false;
  /** The current image value is an element of a list (Bedrock's `"images": ["…", "…"]`). */
  #inList = false;

  constructor(keys: readonly string[], allocate: Allocate) {
    this.#allocate = allocate;
    this.#keys = new Set(keys);
    this.#keyLengths = new Set(keys.map((k) => Buffer.byteLength(k)));
    this.#key = Buffer.alloc(Math.max(0, ...this.#keyLengths) + 1);
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    if (this.#failed) return;
    const n = chunk.length;
    // The next quote and backslash at or after `i`, found once per stretch: positions only grow.
    let quoteAt = -1;
    let slashAt = -1;
    let i = 0;
    const nextQuote = () => {
      if (quoteAt < i) quoteAt = indexOrEnd(chunk, QUOTE, i);
      return quoteAt;
    };
    const nextSlash = () => {
      if (slashAt < i) slashAt = indexOrEnd(chunk, BACKSLASH, i);
      return slashAt;
    };
    let restFrom = this.#state === IN_IMAGE ? -1 : 0;
    while (i < n) {
      switch (this.#state) {
        case OUTSIDE: {
          const q = nextQuote();
          if (q < n) {
            this.#state = IN_STRING;
            this.#keyLength = 0;
            this.#keyPlain = true;
          }
          i = q + 1;
          break;
        }
        case IN_STRING: {
          const q = nextQuote();
          const s = nextSlash();
          const end = Math.min(q, s);
          this.#keepKeyBytes(chunk, i, end);
          if (s < q) {
            this.#keyPlain = false;
            this.#state = IN_ESCAPE;
          } else if (q < n) {
            this.#state = this.#isKey() ? AFTER_KEY : OUTSIDE;
          }
          i = end + 1;
          break;
        }
        case IN_ESCAPE:
          // The escaped character (`\uXXXX` goes on with hex digits: no quote, no backslash).
          this.#state = IN_STRING;
          i++;
          break;
        case AFTER_KEY:
        case AFTER_COLON:
        case IN_LIST:
        case AFTER_ELEMENT: {
          i = skipSpace(chunk, i);
          if (i === n) break;
          const c = chunk[i];
          const state = this.#state;
          if (state === AFTER_KEY && c === COLON) {
            this.#state = AFTER_COLON;
            i++;
          } else if (state === AFTER_COLON && c === OPEN_BRACKET) {
            this.#state = IN_LIST;
            i++;
          } else if ((state === AFTER_COLON || state === IN_LIST) && c === QUOTE) {
            this.#inList = state === IN_LIST;
            this.#rest.push(chunk.subarray(restFrom, i + 1));
            restFrom = -1;
            this.#value = [];
            this.#valueLength = 0;
            this.#state = IN_IMAGE;
            i++;
          } else if (state === AFTER_ELEMENT && c === COMMA) {
            this.#state = IN_LIST;
            i++;
          } else {
            // Not a key after all (a value, or malformed), a value that is not a string or a
            // list of strings (null, a number, an object…), or the list's end: left to the parser.
            this.#state = OUTSIDE;
          }
          break;
        }
        case IN_IMAGE: {
          // The value ends at the next quote: an escape before it (`\"` included) leaves a
          // backslash in the text, which is not base64, so the decode fails and the whole
          // parse reads the value.
          const q = nextQuote();
          if (q > i) {
            this.#value.push(chunk.subarray(i, q));
            this.#valueLength += q - i;
          }
          if (q < n) {
            // An empty value stays "" (no marker), as adapters check for it.
            if (this.#valueLength > 0) {
              const bytes = decodeBase64Strict(this.#value, this.#valueLength, this.#allocate);
              if (bytes === undefined) {
                this.#fail();
                return;
              }
              const marker = MARKER + this.#images.size;
              this.#images.set(marker, bytes);
              this.#rest.push(Buffer.from(marker, "latin1"));
            }
            this.#value = [];
            restFrom = q;
            this.#state = this.#inList ? AFTER_ELEMENT : OUTSIDE;
          }
          i = q + 1;
          break;
        }
      }
    }
    if (restFrom >= 0 && restFrom < n) this.#rest.push(chunk.subarray(restFrom));
  }

  end(): ParsedImagesBody | undefined {
    if (this.#failed || this.#images.size === 0 || this.#state !== OUTSIDE)
      return this.#parseWhole();
    try {
      return { json: JSON.parse(Buffer.concat(this.#rest).toString("utf8")), images: this.#images };
    } catch {
      return this.#parseWhole();
    }
  }

  #keepKeyBytes(chunk: Buffer, from: number, to: number): void {
    const room = this.#key.length - this.#keyLength;
    if (room <= 0 || !this.#keyPlain) return;
    const count = Math.min(room, to - from);
    chunk.copy(this.#key, this.#keyLength, from, from + count);
    this.#keyLength += count;
  }

  /** The string just closed names an image key (spelled without escapes: an escaped one is left to the parser). */
  #isKey(): boolean {
    return (
      this.#keyPlain &&
      this.#keyLengths.has(this.#keyLength) &&
      this.#keys.has(this.#key.toString("utf8", 0, this.#keyLength))
    );
  }

  #fail(): void {
    this.#failed = true;
    this.#rest.length = 0;
    this.#images.clear();
    this.#value = [];
  }

  /** The rare case: the whole body joined, as one string, through `JSON.parse`. */
  #parseWhole(): ParsedImagesBody | undefined {
    return parseWhole(this.#chunks);
  }
}

/** The body joined, as one string, through `JSON.parse`; image values stay base64 strings. */
function parseWhole(chunks: readonly Buffer[]): ParsedImagesBody | undefined {
  try {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    return { json: JSON.parse(body.toString("utf8")), images: NO_IMAGES };
  } catch {
    return undefined;
  }
}

function indexOrEnd(chunk: Buffer, byte: number, from: number): number {
  const i = chunk.indexOf(byte, from);
  return i < 0 ? chunk.length : i;
}

function skipSpace(chunk: Buffer, i: number): number {
  for (;;) {
    const c = chunk[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/**
 * Decodes the base64 text in `pieces` (`length` bytes in all) into one Buffer of exactly the
 * decoded size, 64 KiB of text at a time, carrying a quantum split between pieces over; or
 * undefined if any character is not base64: Node's decoder skips (or stops at) such
 * characters, so a write shorter than its text implies means the text held something the
 * whole-body parse must judge (a control character JSON forbids, say).
 */
function decodeBase64Strict(
  pieces: readonly Buffer[],
  length: number,
  allocate: Allocate,
): Buffer | undefined {
  let n = length;
  for (let pad = 0; pad < 2 && n > 0 && byteAt(pieces, n - 1) === EQUALS; pad++) n--;
  if (n % 4 === 1) return undefined;
  const out = allocate(Math.floor((n * 3) / 4));
  let pos = 0;
  let carry = "";
  let left = n;
  for (const piece of pieces) {
    if (left === 0) break; // only padding remains
    const to = Math.min(piece.length, left);
    left -= to;
    let from = 0;
    if (carry !== "") {
      from = Math.min(4 - carry.length, to);
      carry += piece.toString("latin1", 0, from);
      if (carry.length < 4) continue;
      if (out.write(carry, pos, "base64") !== 3) return undefined;
      pos += 3;
    }
    while (to - from >= 4) {
      const step = Math.min(to - from, PIECE) & ~3;
      const bytes = (step / 4) * 3;
      if (out.write(piece.toString("latin1", from, from + step), pos, "base64") !== bytes)
        return undefined;
      pos += bytes;
      from += step;
    }
    carry = piece.toString("latin1", from, to);
  }
  if (carry !== "") {
    if (out.write(carry, pos, "base64") !== carry.length - 1) return undefined;
    pos += carry.length - 1;
  }
  return pos === out.length ? out : undefined;
}

/** The byte at `index` of the pieces taken as one. */
function byteAt(pieces: readonly Buffer[], index: number): number | undefined {
  for (const piece of pieces) {
    if (index < piece.length) return piece[index];
    index -= piece.length;
  }
  return undefined;
}
