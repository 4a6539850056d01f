/**
 * Property-based fuzzing of the multipart upload routes (`POST /v1/images/edits` and
 * `/v1/images/variations`): random forms (known and unknown fields, text where a file goes
 * and files where text goes, repeated fields, random and real image bytes, masks of any
 * size), and broken bodies (truncated, wrong boundary, no boundary, garbage) against one
 * running gateway. Property, for every case: the answer is a 200 or a contract 4xx (400,
 * 404, 413) in OpenAI's error shape, never a 5xx or a dropped connection; afterwards the
 * gateway still answers a normal edit.
 *
 * Reproduce with the printed seed: FUZZ_SEED=<seed> npx vitest run test/robustness/fuzz-multipart.test.ts
 */
import { renderPng } from "@imagegate/emulators/png";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../support/stack.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 250);
const MAX_UPLOAD = 256 * 1024;

const YAML = `
model_list:
  - model_name: editor
    params:
      model: openai/gpt-image-1
router_settings:
  num_retries: 0
server:
  max_upload_bytes: ${MAX_UPLOAD}
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ yaml: YAML });
});
afterAll(async () => {
  await stack?.close();
});

const PNG_A = renderPng(64, 64, "fuzz-a");
const PNG_B = renderPng(48, 64, "fuzz-b");

/** Field names restated from the contract, plus names no route takes. */
const TEXT_NAMES = [
  "prompt",
  "model",
  "n",
  "size",
  "quality",
  "response_format",
  "background",
  "input_fidelity",
  "output_format",
  "output_compression",
  "user",
  "stream",
  "partial_images",
  "strength",
  "mask_prompt",
  "negative_prompt",
  "seed",
  "image",
  "mask",
  "svg[model]",
  "__proto__",
  "constructor",
  "",
];
const FILE_NAMES = ["image", "image[]", "mask", "prompt", "other", ""];
const VALUES = [
  "a cat",
  "editor",
  "dall-e-2",
  "openai/dall-e-2",
  "1",
  "2",
  "-1",
  "0.5",
  "99999999999",
  "true",
  "false",
  "1024x1024",
  "64x64",
  "auto",
  "high",
  "low",
  "b64_json",
  "url",
  "png",
  "",
  "\u0000",
  "é",
];

type Part =
  | { kind: "text"; name: string; value: string }
  | { kind: "file"; name: string; type: string; bytes: Uint8Array };

const part: fc.Arbitrary<Part> = fc.oneof(
  fc.record({
    kind: fc.constant("text" as const),
    name: fc.oneof(fc.constantFrom(...TEXT_NAMES), fc.string({ maxLength: 12 })),
    value: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 40 })),
  }),
  fc.record({
    kind: fc.constant("file" as const),
    name: fc.constantFrom(...FILE_NAMES),
    type: fc.constantFrom("image/png", "image/jpeg", "application/octet-stream", ""),
    bytes: fc.oneof(
      fc.constantFrom(PNG_A, PNG_B, PNG_A.subarray(0, 40)),
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 0, max: 3 }).map((k) => new Uint8Array(MAX_UPLOAD + k * 1000)),
    ),
  }),
);

const BOUNDARY = "fuzzBoundary7MA4YWxkTrZu0gW";

function encode(parts: readonly Part[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if (p.kind === "text") {
      chunks.push(
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`,
        ),
      );
    } else {
      chunks.push(
        Buffer.from(
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"; filename="f.png"\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ""}\r\n`,
        ),
        Buffer.from(p.bytes),
        Buffer.from("\r\n"),
      );
    }
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

/** What is done to a well-formed body before it is sent. */
const damage = fc.oneof(
  fc.constant("none" as const),
  fc.constant("none" as const),
  fc.constant("none" as const),
  fc.constant("truncate" as const),
  fc.constant("no-boundary" as const),
  fc.constant("wrong-boundary" as const),
  fc.constant("garbage" as const),
);

const fuzzCase = fc.record({
  path: fc.constantFrom("/v1/images/edits", "/v1/images/variations"),
  parts: fc.array(part, { maxLength: 8 }),
  damage,
  cut: fc.nat(),
  garbage: fc.uint8Array({ maxLength: 500 }),
});

describe("multipart fuzz", () => {
  it("answers every form with a 200 or a contract 4xx, never a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fuzzCase, async (c) => {
        let body = encode(c.parts);
        let contentType = `multipart/form-data; boundary=${BOUNDARY}`;
        if (c.damage === "truncate") body = body.subarray(0, c.cut % (body.length + 1));
        if (c.damage === "no-boundary") contentType = "multipart/form-data";
        if (c.damage === "wrong-boundary") contentType = "multipart/form-data; boundary=other";
        if (c.damage === "garbage") body = Buffer.from(c.garbage);
        const res = await fetch(`${stack.url}${c.path}`, {
          method: "POST",
          headers: { "content-type": contentType },
          body: new Uint8Array(body),
        });
        const text = await res.text();
        expect([200, 400, 404, 413]).toContain(res.status);
        expect(res.headers.get("x-request-id")).toBeTruthy();
        if (res.status !== 200) {
          const error = (JSON.parse(text) as { error: Record<string, unknown> }).error;
          expect(typeof error.message).toBe("string");
          expect(error.type).toBe("invalid_request_error");
          if (res.status === 413) expect(error.code).toBe("request_too_large");
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // Still serving.
    const form = new FormData();
    form.set("model", "editor");
    form.set("prompt", "after the fuzz");
    form.set("image", new Blob([new Uint8Array(PNG_A)], { type: "image/png" }), "a.png");
    const res = await fetch(`${stack.url}/v1/images/edits`, { method: "POST", body: form });
    expect(res.status).toBe(200);
  }, 120_000);
});
