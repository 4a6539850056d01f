import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/errors.ts";
import { sendUpstream } from "../../src/providers/http.ts";
import { parseImagesJson, SMALL_BODY, scanImagesJson } from "../../src/providers/image-json.ts";

const IMG = Buffer.from("a small image, not really a PNG \u00ff\u0000\u0001").toString("base64");
const IMG2 = Buffer.from("another one!").toString("base64");

/** Every `b64_json` string as the bytes Buffer.from decodes from it, in canonical base64. */
function canonical(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json), (key, v) =>
    key === "b64_json" && typeof v === "string" ? Buffer.from(v, "base64").toString("base64") : v,
  );
}

/** `body` cut at each of `cuts` (ascending byte offsets) into chunks. */
function split(body: string | Buffer, cuts: readonly number[] = []): Buffer[] {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, "utf8");
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, buf.length]) {
    chunks.push(buf.subarray(from, cut));
    from = cut;
  }
  return chunks;
}

/** The parsed JSON with each marker replaced by its image (canonical): compare with `parsed(body)`. */
function resolved(body: string, cuts: readonly number[] = []): unknown {
  const result = scanImagesJson(split(body, cuts));
  if (result === undefined) return undefined;
  return canonical(
    JSON.parse(JSON.stringify(result.json), (_key, v) =>
      typeof v === "string" && result.images.has(v) ? result.images.get(v)!.toString("base64") : v,
    ),
  );
}

/** What JSON.parse and Buffer.from alone give. */
function parsed(body: string): unknown {
  return canonical(JSON.parse(body));
}

/** The values read as images, in order, as base64; [] when none was (or the scan gave up). */
function images(body: string, cuts: readonly number[] = []): string[] {
  return [...scanImagesJson(split(body, cuts))!.images.values()].map((b) => b.toString("base64"));
}

/** Every way of cutting `body` in two, and (for short bodies) in three. */
function* everyCut(body: string): Generator<number[]> {
  const n = Buffer.byteLength(body);
  yield [];
  for (let a = 0; a <= n; a++) yield [a];
  if (n > 160) return;
  for (let a = 1; a < n; a++) for (let b = a + 1; b < n; b++) yield [a, b];
}

/** One byte per chunk. */
function bytewise(body: string): number[] {
  return Array.from({ length: Buffer.byteLength(body) - 1 }, (_, i) => i + 1);
}

describe("which values are read as images", () => {
  it("one value", () => {
    expect(images(`{"created":1,"data":[{"b64_json":"${IMG}"}]}`)).toEqual([IMG]);
  });

  it("allows whitespace around the colon", () => {
    expect(images(`{ "data" : [ { "b64_json" \n\t :  \r\n "${IMG}" } ] }`)).toEqual([IMG]);
  });

  it("several values, in order, whatever the key order", () => {
    const body = `{"data":[{"revised_prompt":"x","b64_json":"${IMG}"},{"b64_json":"${IMG2}","revised_prompt":"y"}],"created":2}`;
    expect(images(body)).toEqual([IMG, IMG2]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("ignores b64_json inside another string, escaped quotes included", () => {
    const body = `{"revised_prompt":"say \\"b64_json\\": \\"QUJD\\" and b64_json","data":[{"b64_json":"${IMG}"}]}`;
    expect(images(body)).toEqual([IMG]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("ignores b64_json as a value, and a string ending in an escaped backslash", () => {
    const body = `{"a":"b64_json","b":["b64_json", "c:\\\\"],"data":[{"b64_json":"${IMG}"}]}`;
    expect(images(body)).toEqual([IMG]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("leaves non-string values to the parser", () => {
    const body = `{"data":[{"b64_json":null,"url":"https://x"}]}`;
    expect(images(body)).toEqual([]);
    expect(scanImagesJson([Buffer.from(body)])!.json).toEqual(JSON.parse(body));
  });

  it("reads the keys it is given, and only those", () => {
    const body = `{"predictions":[{"bytesBase64Encoded":"${IMG}","mimeType":"image/png"}],"b64_json":"${IMG2}"}`;
    const result = scanImagesJson([Buffer.from(body)], ["bytesBase64Encoded"])!;
    expect([...result.images.values()].map((b) => b.toString("base64"))).toEqual([IMG]);
    expect((result.json as { b64_json: string }).b64_json).toBe(IMG2);
    expect(images(body)).toEqual([IMG2]);
    expect(scanImagesJson([Buffer.from(body)], [])!.json).toEqual(JSON.parse(body));
  });
});

describe("parseImagesJson", () => {
  it("reads the images as bytes and parses the rest", () => {
    const body = `{"created":1,"data":[{"b64_json":"${IMG}"},{"b64_json":"${IMG2}"}],"usage":{"total_tokens":3}}`;
    const result = scanImagesJson([Buffer.from(body)])!;
    expect(result.images.size).toBe(2);
    const data = (result.json as { data: { b64_json: string }[] }).data;
    expect(result.images.get(data[0]!.b64_json)!.toString("base64")).toBe(IMG);
    expect(result.images.get(data[1]!.b64_json)!.toString("base64")).toBe(IMG2);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("gives JSON.parse's answer when a value holds escapes", () => {
    for (const body of [
      `{"data":[{"b64_json":"QUJD\\u0044"}]}`,
      `{"data":[{"b64_json":"QUJD\\nREVG"}]}`,
      `{"data":[{"b64_json":"QUJD\\/REVG"}]}`,
    ]) {
      expect(images(body), body).toEqual([]);
      expect(scanImagesJson([Buffer.from(body)])!.json).toEqual(JSON.parse(body));
    }
  });

  it("falls back to the whole parse for characters base64 does not have", () => {
    for (const v of ["QU JD", "QUJD!", "QU=JD", "QQ==QUJD", "Q", "QUJD\u00e9", "QUJD-_"]) {
      const body = `{"data":[{"b64_json":"${v}"}]}`;
      expect(resolved(body), v).toEqual(parsed(body));
    }
    // A raw control character is not JSON: the whole parse rejects the body.
    expect(scanImagesJson([Buffer.from(`{"data":[{"b64_json":"QU\u0001JD"}]}`)])).toBeUndefined();
  });

  it("accepts unpadded and padding-only values as Buffer.from would", () => {
    for (const v of ["QUI", "QQ", "QUI=", "QQ==", "QUJD", "QUI==", "QUJD=", "=", "=="]) {
      const result = scanImagesJson([Buffer.from(`{"data":[{"b64_json":"${v}"}]}`)])!;
      expect(result.images.size, v).toBe(1);
      expect([...result.images.values()][0], v).toEqual(Buffer.from(v, "base64"));
    }
  });

  it("leaves an empty value an empty string, not a marker", () => {
    const body = `{"data":[{"b64_json":""},{"b64_json":"${IMG}"}]}`;
    const result = scanImagesJson([Buffer.from(body)])!;
    expect(images(body)).toEqual([IMG]);
    expect((result.json as { data: { b64_json: string }[] }).data[0]!.b64_json).toBe("");
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("is undefined for a body that is not JSON", () => {
    expect(scanImagesJson([Buffer.from("not json")])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"data":[{"b64_json":"${IMG}"}]`)])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"b64_json":"${IMG}" "x":1}`)])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"data":[{"b64_json":"QUJD`)])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"data":[{"revised_prompt":"abc\\"}]}`)])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"a":"b64_json":"QUJD"}`)])).toBeUndefined();
    expect(scanImagesJson([Buffer.from(`{"data":[{"b64_json"`)])).toBeUndefined();
    expect(scanImagesJson([])).toBeUndefined();
  });

  it("takes no key with an escape in it for an image key", () => {
    const body = `{"\\"b64_json":"${IMG}","b\\u0036\\u0034_json":"${IMG2}","\\\\b64_json":"${IMG}"}`;
    expect(images(body)).toEqual([]);
    expect(scanImagesJson([Buffer.from(body)])!.json).toEqual(JSON.parse(body));
  });

  it("handles a b64_json key anywhere, and a key spelled with an escape", () => {
    const body = `{"usage":{"b64_json":"${IMG2}"},"data":[{"b64\\u005fjson":"${IMG}"}]}`;
    expect(images(body)).toEqual([IMG2]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("agrees with JSON.parse on arbitrary bodies", () => {
    const image = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64"));
    const item = fc.record(
      {
        b64_json: fc.oneof(image, fc.string(), fc.constant(null)),
        revised_prompt: fc.string(),
        url: fc.string(),
      },
      { requiredKeys: [] },
    );
    const body = fc.record(
      { created: fc.nat(), data: fc.array(item, { maxLength: 4 }), note: fc.string() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(body, fc.integer({ min: 0, max: 2 }), (b, indent) => {
        const text = JSON.stringify(b, null, indent);
        expect(resolved(text)).toEqual(parsed(text));
      }),
      { numRuns: 500 },
    );
  });
});

describe("a body in chunks", () => {
  const body = `{"created":1,"data":[{"b64_json":"${IMG}","revised_prompt":"é \\"b64_json\\""},{"b64_json" : "${IMG2}"}]}`;
  const at = (text: string, from = 0) => {
    const i = Buffer.from(body).indexOf(text, from);
    expect(i).toBeGreaterThanOrEqual(0);
    return i;
  };

  it("reads the same images wherever the chunks are cut", () => {
    const key = at('"b64_json"');
    const open = at('"', key + '"b64_json":'.length - 1);
    const close = at('"', open + 1);
    const named: Record<string, number[]> = {
      "inside the key": [key + 1, key + 4, key + 9],
      "between the key and the colon": [key + 10],
      "between the colon and the value": [key + 11],
      "right after the opening quote": [open + 1],
      "inside the base64, at offset 0 mod 4": [open + 1 + 8],
      "inside the base64, at offset 1 mod 4": [open + 1 + 9],
      "inside the base64, at offset 2 mod 4": [open + 1 + 10],
      "inside the base64, at offset 3 mod 4": [open + 1 + 11],
      "right at the closing quote": [close],
      "right after the closing quote": [close + 1],
      "inside a multi-byte character": [at("é") + 1],
      "inside an escape": [at("\\") + 1],
      "around the second key's spaces": [at('" : "') + 1, at('" : "') + 2, at('" : "') + 3],
      "every alignment of one value": [open + 2, open + 5, open + 11, open + 16],
      "one byte per chunk": bytewise(body),
    };
    for (const [where, cuts] of Object.entries(named)) {
      expect(images(body, cuts), where).toEqual([IMG, IMG2]);
      expect(resolved(body, cuts), where).toEqual(parsed(body));
    }
    for (const cuts of everyCut(body)) {
      expect(images(body, cuts), String(cuts)).toEqual([IMG, IMG2]);
    }
  });

  it("reads every padding the same wherever the chunks are cut", () => {
    for (const v of ["QUJD", "QUI=", "QUI", "QQ==", "QQ=", "QQ", "QUJDRA==", "QUJDREU=", "=="]) {
      const text = `{"data":[{"b64_json":"${v}"}]}`;
      for (const cuts of everyCut(text)) {
        expect(
          scanImagesJson(split(text, cuts))!.images.values().next().value,
          `${v} ${cuts}`,
        ).toEqual(Buffer.from(v, "base64"));
      }
    }
    const empty = `{"data":[{"b64_json":""}]}`;
    for (const cuts of everyCut(empty))
      expect(scanImagesJson(split(empty, cuts))!.json, String(cuts)).toEqual(JSON.parse(empty));
  });

  it("falls back to JSON.parse's answer wherever the chunks are cut", () => {
    for (const text of [
      `{"data":[{"b64_json":"${IMG}"},{"b64_json":"QUJD\\u0044"}]}`,
      `{"data":[{"b64_json":"${IMG}"},{"b64_json":"QU JD"}]}`,
      `{"data":[{"b64_json":"QU=JDREVG"},{"b64_json":"${IMG2}"}]}`,
      `{"data":[{"b64_json":"QUJDRE\u00e9VG"}]}`,
      `{"usage":{"b64_json":"${IMG2}"},"data":[{"b64\\u005fjson":"${IMG}"}]}`,
      `["b64_json", {"b64_json" : null}, "b64_json"]`,
    ]) {
      for (const cuts of everyCut(text)) {
        expect(resolved(text, cuts), `${text} ${cuts}`).toEqual(parsed(text));
      }
    }
    for (const text of [
      `{"data":[{"b64_json":"QU\u0001JD"}]}`,
      `{"data":[{"b64_json":"QUJD`,
      `{"a":"b64_json":"QUJD"}`,
    ]) {
      for (const cuts of everyCut(text))
        expect(scanImagesJson(split(text, cuts)), `${text} ${cuts}`).toBeUndefined();
    }
  });

  it("decodes a large image into a Buffer of exactly its size, however it arrives", () => {
    const bytes = randomBytes(300_001); // base64 longer than the decoder's 64 KiB steps, padded
    const text = `{"created":1,"data":[{"b64_json":"${bytes.toString("base64")}"}]}`;
    const n = text.length;
    for (const size of [1000, 4095, 16_384, 65_536, 65_537, 100_003, n]) {
      const cuts = Array.from({ length: Math.ceil(n / size) - 1 }, (_, i) => (i + 1) * size);
      const image = [...scanImagesJson(split(text, cuts))!.images.values()][0]!;
      expect(image.equals(bytes), String(size)).toBe(true);
      expect(image.buffer.byteLength, String(size)).toBe(bytes.length);
    }
  });

  it("agrees with JSON.parse however the body is cut", () => {
    const image = fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString("base64"));
    const item = fc.record(
      {
        b64_json: fc.oneof(image, image, fc.string(), fc.constant(null)),
        revised_prompt: fc.string({ unit: "grapheme" }),
      },
      { requiredKeys: [] },
    );
    const bodies = fc.record(
      { created: fc.nat(), data: fc.array(item, { maxLength: 4 }) },
      { requiredKeys: [] },
    );
    const text = fc
      .tuple(bodies, fc.integer({ min: 0, max: 2 }))
      .map(([b, indent]) => JSON.stringify(b, null, indent));
    const withCuts = text.chain((t) =>
      fc.tuple(
        fc.constant(t),
        fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, Buffer.byteLength(t) - 1) }), {
          maxLength: 8,
        }),
      ),
    );
    fc.assert(
      fc.property(withCuts, ([t, cuts]) => {
        expect(
          resolved(
            t,
            [...cuts].sort((a, b) => a - b),
          ),
        ).toEqual(parsed(t));
      }),
      { numRuns: 500 },
    );
  });
});

describe("from a live upstream", () => {
  const big = randomBytes(200_000);
  const bigBody = `{"created":1,"data":[{"b64_json":"${big.toString("base64")}"}]}`;
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      if (req.url === "/error") {
        res.writeHead(429, { "content-type": "application/json" });
        res.write('{"error":{"message":"slow');
        await new Promise((r) => setTimeout(r, 5));
        res.end(' down"}}');
        return;
      }
      // The body in awkward pieces, each flushed on its own.
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < bigBody.length; i += 7001) {
        res.write(bigBody.slice(i, i + 7001));
        await new Promise((r) => setImmediate(r));
      }
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });

  const call = (path: string, maxBytes?: number) =>
    sendUpstream(`${base}${path}`, {
      method: "GET",
      headers: {},
      signal: new AbortController().signal,
      timeoutMs: 5000,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
    });

  it("hands over the chunks as they arrived, and reads the image from them", async () => {
    const res = await call("/ok");
    expect(res.status).toBe(200);
    expect(res.chunks.length).toBeGreaterThan(1);
    const image = [...parseImagesJson(res.chunks)!.images.values()][0]!;
    expect(image.equals(big)).toBe(true);
    expect(res.body.toString()).toBe(bigBody); // joined only when asked
  });

  it("joins an error body for the error mappers", async () => {
    const res = await call("/error");
    expect(res.status).toBe(429);
    expect(JSON.parse(res.body.toString())).toEqual({ error: { message: "slow down" } });
  });

  it("still caps the response size", async () => {
    const err = await call("/ok", 100_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("upstream_response_too_large");
    expect((await call("/ok", Buffer.byteLength(bigBody))).status).toBe(200);
  });
});

describe("parseImagesJson by size", () => {
  it("parses a small body whole (values stay base64) and scans a large one (values decoded)", () => {
    const small = `{"data":[{"b64_json":"${Buffer.from("tiny").toString("base64")}"}]}`;
    const parsedSmall = parseImagesJson(Buffer.from(small))!;
    expect(parsedSmall.images.size).toBe(0);
    expect(parsedSmall.json).toEqual(JSON.parse(small));

    const image = Buffer.alloc(SMALL_BODY, 7);
    const large = `{"created":1,"data":[{"b64_json":"${image.toString("base64")}"}]}`;
    const parsedLarge = parseImagesJson([
      Buffer.from(large.slice(0, 100)),
      Buffer.from(large.slice(100)),
    ])!;
    expect([...parsedLarge.images.values()]).toEqual([image]);
    expect((parsedLarge.json as { created: number }).created).toBe(1);
  });
});

describe("a list of images under a key (Bedrock's `images`)", () => {
  const KEYS = ["images"];
  /** The parsed JSON with each marker replaced by its image's base64 (the inputs are canonical). */
  function resolvedList(body: string, cuts: readonly number[]): unknown {
    const result = scanImagesJson(split(body, cuts), KEYS);
    if (result === undefined) return undefined;
    return JSON.parse(JSON.stringify(result.json), (_key, v) =>
      typeof v === "string" && result.images.has(v) ? result.images.get(v)!.toString("base64") : v,
    );
  }
  function listImages(body: string, cuts: readonly number[]): string[] {
    return [...scanImagesJson(split(body, cuts), KEYS)!.images.values()].map((b) =>
      b.toString("base64"),
    );
  }

  it("reads every element as an image, wherever the chunks are cut", () => {
    const body = `{"seeds":[1,2], "images" : [ "${IMG}" ,"${IMG2}"],"finish_reasons":[null,null]}`;
    for (const cuts of everyCut(body)) {
      expect(listImages(body, cuts), String(cuts)).toEqual([IMG, IMG2]);
      expect(resolvedList(body, cuts), String(cuts)).toEqual(JSON.parse(body));
    }
  });

  it("leaves lists that are not all strings, and empty ones, to the parser", () => {
    for (const body of [
      `{"images":[],"n":1}`,
      `{"images":[1,"${IMG}"]}`,
      `{"images":["${IMG}",{"x":"${IMG2}"}],"tail":"${IMG2}"}`,
      `{"images":[["${IMG}"]]}`,
      `{"images":["${IMG}",""]}`,
    ]) {
      for (const cuts of [[], [9], [10], [11], [body.length - 3]]) {
        expect(resolvedList(body, cuts), `${body} ${cuts}`).toEqual(JSON.parse(body));
      }
    }
    expect(listImages(`{"images":[1,"${IMG}"]}`, [])).toEqual([]);
    expect(listImages(`{"images":["${IMG}",{"x":"${IMG2}"}]}`, [])).toEqual([IMG]);
  });

  it("falls back to JSON.parse's answer when an element is not base64", () => {
    const body = `{"images":["${IMG}","not base64!"]}`;
    for (const cuts of everyCut(body)) {
      const result = scanImagesJson(split(body, cuts), KEYS)!;
      expect(result.images.size, String(cuts)).toBe(0);
      expect(result.json).toEqual(JSON.parse(body));
    }
  });
});
