import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findB64JsonValues, parseImagesJson } from "../../src/providers/image-json.ts";

const IMG = Buffer.from("a small image, not really a PNG \u00ff\u0000\u0001").toString("base64");
const IMG2 = Buffer.from("another one!").toString("base64");

/** Every `b64_json` string as the bytes Buffer.from decodes from it, in canonical base64. */
function canonical(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json), (key, v) =>
    key === "b64_json" && typeof v === "string" ? Buffer.from(v, "base64").toString("base64") : v,
  );
}

/** The parsed JSON with each marker replaced by its image (canonical): compare with `parsed(body)`. */
function resolved(body: string): unknown {
  const parsed = parseImagesJson(Buffer.from(body, "utf8"));
  if (parsed === undefined) return undefined;
  return canonical(
    JSON.parse(JSON.stringify(parsed.json), (_key, v) =>
      typeof v === "string" && parsed.images.has(v) ? parsed.images.get(v)!.toString("base64") : v,
    ),
  );
}

/** What JSON.parse and Buffer.from alone give. */
function parsed(body: string): unknown {
  return canonical(JSON.parse(body));
}

function values(body: string): string[] | undefined {
  const buf = Buffer.from(body, "utf8");
  return findB64JsonValues(buf)?.map(([s, e]) => buf.toString("utf8", s, e));
}

function splicedCount(body: string): number | undefined {
  return parseImagesJson(Buffer.from(body, "utf8"))?.images.size;
}

describe("findB64JsonValues", () => {
  it("finds one value", () => {
    expect(values(`{"created":1,"data":[{"b64_json":"${IMG}"}]}`)).toEqual([IMG]);
  });

  it("allows whitespace around the colon", () => {
    expect(values(`{ "data" : [ { "b64_json" \n\t :  \r\n "${IMG}" } ] }`)).toEqual([IMG]);
  });

  it("finds several values, in order, whatever the key order", () => {
    const body = `{"data":[{"revised_prompt":"x","b64_json":"${IMG}"},{"b64_json":"${IMG2}","revised_prompt":"y"}],"created":2}`;
    expect(values(body)).toEqual([IMG, IMG2]);
  });

  it("ignores b64_json inside another string, escaped quotes included", () => {
    const body = `{"revised_prompt":"say \\"b64_json\\": \\"QUJD\\" and b64_json","data":[{"b64_json":"${IMG}"}]}`;
    expect(values(body)).toEqual([IMG]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("ignores b64_json as a value, and a string ending in an escaped backslash", () => {
    const body = `{"a":"b64_json","b":["b64_json", "c:\\\\"],"data":[{"b64_json":"${IMG}"}]}`;
    expect(values(body)).toEqual([IMG]);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("leaves non-string values to the parser", () => {
    expect(values(`{"data":[{"b64_json":null,"url":"https://x"}]}`)).toEqual([]);
  });

  it("gives up on a value with an escape", () => {
    expect(values(`{"data":[{"b64_json":"QUJD\\nREVG"}]}`)).toBeUndefined();
    expect(values(`{"data":[{"b64_json":"QUJD\\/REVG"}]}`)).toBeUndefined();
  });

  it("gives up on a string that never closes", () => {
    expect(values(`{"data":[{"b64_json":"QUJD`)).toBeUndefined();
    expect(values(`{"data":[{"revised_prompt":"abc\\"}]}`)).toBeUndefined();
  });
});

describe("parseImagesJson", () => {
  it("reads the images as bytes and parses the rest", () => {
    const body = `{"created":1,"data":[{"b64_json":"${IMG}"},{"b64_json":"${IMG2}"}],"usage":{"total_tokens":3}}`;
    const result = parseImagesJson(Buffer.from(body))!;
    expect(result.images.size).toBe(2);
    const data = (result.json as { data: { b64_json: string }[] }).data;
    expect(result.images.get(data[0]!.b64_json)!.toString("base64")).toBe(IMG);
    expect(result.images.get(data[1]!.b64_json)!.toString("base64")).toBe(IMG2);
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("gives JSON.parse's answer when a value holds escapes", () => {
    const body = `{"data":[{"b64_json":"QUJD\\u0044"}]}`;
    expect(splicedCount(body)).toBe(0);
    expect(parseImagesJson(Buffer.from(body))!.json).toEqual(JSON.parse(body));
  });

  it("falls back to the whole parse for characters base64 does not have", () => {
    for (const v of ["QU JD", "QUJD!", "QU=JD", "Q", "QUJD\u00e9", "QUJD-_"]) {
      const body = `{"data":[{"b64_json":"${v}"}]}`;
      expect(resolved(body), v).toEqual(parsed(body));
    }
    // A raw control character is not JSON: the whole parse rejects the body.
    expect(parseImagesJson(Buffer.from(`{"data":[{"b64_json":"QU\u0001JD"}]}`))).toBeUndefined();
  });

  it("accepts unpadded and empty values as Buffer.from would", () => {
    for (const v of ["QUI", "QQ", "QUI=", "QQ==", ""]) {
      const result = parseImagesJson(Buffer.from(`{"data":[{"b64_json":"${v}"}]}`))!;
      expect(result.images.size, v).toBe(1);
      expect([...result.images.values()][0]).toEqual(Buffer.from(v, "base64"));
    }
  });

  it("is undefined for a body that is not JSON", () => {
    expect(parseImagesJson(Buffer.from("not json"))).toBeUndefined();
    expect(parseImagesJson(Buffer.from(`{"data":[{"b64_json":"${IMG}"}]`))).toBeUndefined();
    expect(parseImagesJson(Buffer.from(`{"b64_json":"${IMG}" "x":1}`))).toBeUndefined();
  });

  it("handles a b64_json key anywhere, and a key spelled with an escape", () => {
    const body = `{"usage":{"b64_json":"${IMG2}"},"data":[{"b64\\u005fjson":"${IMG}"}]}`;
    expect(resolved(body)).toEqual(parsed(body));
  });

  it("agrees with JSON.parse on arbitrary bodies", () => {
    const image = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64"));
    const item = fc.record(
      { b64_json: fc.oneof(image, fc.string(), fc.constant(null)), revised_prompt: fc.string(), url: fc.string() },
      { requiredKeys: [] },
    );
    const body = fc.record({ created: fc.nat(), data: fc.array(item, { maxLength: 4 }), note: fc.string() }, { requiredKeys: [] });
    fc.assert(
      fc.property(body, fc.integer({ min: 0, max: 2 }), (b, indent) => {
        const text = JSON.stringify(b, null, indent);
        expect(resolved(text)).toEqual(parsed(text));
      }),
      { numRuns: 500 },
    );
  });
});
