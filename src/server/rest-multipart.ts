/**
 * `multipart/form-data` bodies for the upload routes (`POST /v1/images/edits` and
 * `/v1/images/variations`), exactly as OpenAI's SDK sends them: files as `image` (one) or
 * repeated `image[]` (the SDK sends `image[]` even for a one-element array), `mask`, and
 * every other field as text (numbers and booleans as strings). Parsed as it streams in by
 * `@fastify/busboy`; the whole body is counted as it arrives and a body past the limit is a
 * 413 at once, so no more than the limit is ever held.
 *
 * Text fields become the request's JSON (coerced to the field's scalar type), checked like
 * a JSON body (unknown fields, wrong types named in OpenAI's words); files become
 * `InputImage` messages with their bytes and declared media type, each file's chunks joined
 * once into the request's pooled memory (`allocate`, runtime/buffer-pool.ts: a fresh 4 MB
 * buffer per upload is what makes V8 collect).
 */
import {
  create,
  type DescField,
  type DescMessage,
  fromJson,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { Busboy } from "@fastify/busboy";
import { invalidParam } from "../errors/errors.ts";
import { type InputImage, InputImageSchema } from "../gen/imagegate/v1/images_pb.js";
import { tooLarge } from "./exchanges.ts";
import type { Allocate } from "../runtime/buffer-pool.ts";
import { checkJsonBody } from "./json-check.ts";
import type { NodeRequest } from "./universal.ts";

/** Where each file field goes, per request message that takes uploads. */
const FILE_FIELDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "imagegate.v1.EditImageRequest": { image: "images", "image[]": "images", mask: "mask" },
  "imagegate.v1.CreateImageVariationRequest": { image: "image" },
};

/** Whether a request message takes multipart uploads. */
export function takesUploads(input: DescMessage): boolean {
  return Object.hasOwn(FILE_FIELDS, input.typeName);
}

export function isMultipart(contentType: string | undefined): boolean {
  return /^multipart\/form-data\b/i.test(contentType ?? "");
}

/** Parts a body may have: 16 images, a mask, and OpenAI's text fields with room to spare. */
const MAX_PARTS = 64;
/** The longest text field (a 32,000-character prompt is at most 128 KB of UTF-8). */
const MAX_FIELD_BYTES = 256 * 1024;

interface FilePart {
  name: string;
  mimeType: string;
  chunks: Buffer[];
}

/**
 * Reads `req`'s multipart body into a request message of type `input`. Rejects with a 413
 * once more than `maxBytes` have arrived, a 400 for a malformed body or a field it does not
 * take, and with `signal`'s reason when it aborts (the client timeout); what is left of the
 * body is then the caller's to discard. `allocate`: where the files' bytes go.
 */
export function readMultipart<Desc extends DescMessage>(
  req: NodeRequest,
  input: Desc,
  maxBytes: number,
  signal: AbortSignal,
  allocate?: Allocate,
): Promise<MessageShape<Desc>> {
  return new Promise((resolve, reject) => {
    const fields: [string, string][] = [];
    const files: FilePart[] = [];
    let received = 0;
    let settled = false;
    let parser: ReturnType<typeof Busboy>;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      req.off("data", count);
      signal.removeEventListener("abort", onAbort);
      req.unpipe(parser);
      // Files still streaming are drained into nothing.
      parser.removeAllListeners();
      parser.on("error", () => {});
      reject(e);
    };
    const onAbort = () => fail(signal.reason);
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) fail(tooLarge(maxBytes));
    };
    try {
      parser = Busboy({
        headers: req.headers as { "content-type": string },
        limits: {
          parts: MAX_PARTS,
          fieldSize: MAX_FIELD_BYTES,
          fileSize: maxBytes,
          headerPairs: 16,
        },
      });
    } catch (e) {
      reject(
        invalidParam(undefined, `The multipart body cannot be read: ${(e as Error).message}.`),
      );
      return;
    }
    parser.on("field", (name, value, _nameTruncated, valueTruncated) => {
      if (valueTruncated) {
        fail(
          invalidParam(
            name,
            `Invalid '${name}': the value is longer than ${MAX_FIELD_BYTES} bytes.`,
          ),
        );
        return;
      }
      fields.push([name, value]);
    });
    parser.on("file", (name, stream, _filename, _encoding, mimeType) => {
      const part: FilePart = { name, mimeType, chunks: [] };
      files.push(part);
      stream.on("data", (chunk: Buffer) => part.chunks.push(chunk));
      stream.on("error", fail);
    });
    parser.on("partsLimit", () =>
      fail(invalidParam(undefined, `The multipart body has more than ${MAX_PARTS} parts.`)),
    );
    parser.on("error", (e) =>
      fail(invalidParam(undefined, `The multipart body cannot be read: ${(e as Error).message}.`)),
    );
    parser.on("finish", () => {
      if (settled) return;
      settled = true;
      req.off("data", count);
      signal.removeEventListener("abort", onAbort);
      try {
        resolve(buildMessage(input, fields, files, allocate));
      } catch (e) {
        reject(e);
      }
    });
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("data", count);
    req.once("error", fail);
    req.pipe(parser);
  });
}

/** The message from the form's text fields (as JSON, checked) and files. */
export function buildMessage<Desc extends DescMessage>(
  input: Desc,
  fields: readonly [string, string][],
  files: readonly FilePart[],
  allocate?: Allocate,
): MessageShape<Desc> {
  const fileFields = FILE_FIELDS[input.typeName] ?? {};
  const json: Record<string, unknown> = {};
  for (const [name, value] of fields) {
    if (Object.hasOwn(fileFields, name))
      throw invalidParam(name, `Invalid '${name}': it must be sent as a file.`);
    if (Object.hasOwn(json, name))
      throw invalidParam(name, `Invalid '${name}': the field was sent more than once.`);
    json[name] = coerce(fieldOf(input, name), value);
  }
  checkJsonBody(input, json);
  let message: MessageShape<Desc>;
  try {
    message = fromJson(input, json as never);
  } catch (e) {
    throw invalidParam(undefined, `The request cannot be read: ${(e as Error).message}`);
  }
  const target = message as unknown as Record<string, InputImage | InputImage[] | undefined>;
  for (const file of files) {
    const to = fileFields[file.name];
    if (to === undefined) {
      throw invalidParam(
        file.name,
        `Unrecognized request argument supplied: ${file.name} (a file was sent where none is taken)`,
      );
    }
    const image = create(InputImageSchema, { data: join(file.chunks, allocate) });
    if (file.mimeType !== "") image.mediaType = file.mimeType;
    const field = input.fields.find((f) => f.localName === to)!;
    if (field.fieldKind === "list") (target[to] as InputImage[]).push(image);
    else if (target[to] !== undefined)
      throw invalidParam(file.name, `Invalid '${file.name}': only one file is taken.`);
    else target[to] = image;
  }
  return message;
}

/** A file's chunks as one buffer, from `allocate` when given. */
function join(chunks: readonly Buffer[], allocate: Allocate | undefined): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = (allocate ?? Buffer.allocUnsafe)(total);
  let at = 0;
  for (const c of chunks) at += c.copy(out, at);
  return out;
}

function fieldOf(input: DescMessage, name: string): DescField | undefined {
  return input.fields.find((f) => f.jsonName === name || f.name === name);
}

/** A form value as the JSON value its field takes; anything else stays a string (and is a 400). */
function coerce(field: DescField | undefined, value: string): unknown {
  if (field?.fieldKind !== "scalar") return value;
  switch (field.scalar) {
    case ScalarType.INT32:
    case ScalarType.UINT32:
      return /^-?\d{1,10}$/.test(value) ? Number(value) : value;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE: {
      const n = Number(value);
      return value.trim() !== "" && Number.isFinite(n) ? n : value;
    }
    case ScalarType.BOOL:
      return value === "true" ? true : value === "false" ? false : value;
    default:
      return value;
  }
}
