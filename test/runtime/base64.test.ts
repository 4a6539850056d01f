import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import "../../src/runtime/base64.ts";

describe("Uint8Array.prototype.toBase64", () => {
  it("encodes like the TC39 method: padded base64 by default, base64url and no padding on request", () => {
    for (const length of [0, 1, 2, 3, 4, 5, 31, 1000]) {
      const bytes = new Uint8Array(randomBytes(length));
      const b64 = Buffer.from(bytes).toString("base64");
      const url = Buffer.from(bytes).toString("base64url");
      expect(bytes.toBase64!()).toBe(b64);
      expect(bytes.toBase64!({ omitPadding: true })).toBe(b64.replace(/=+$/, ""));
      expect(bytes.toBase64!({ alphabet: "base64url", omitPadding: true })).toBe(url);
      expect(bytes.toBase64!({ alphabet: "base64url" })).toBe(
        url.padEnd(Math.ceil(url.length / 4) * 4, "="),
      );
    }
  });

  it("encodes only the view's own bytes, not its whole buffer", () => {
    const buffer = new Uint8Array([0xff, 1, 2, 3, 0xff]);
    expect(buffer.subarray(1, 4).toBase64!()).toBe(Buffer.from([1, 2, 3]).toString("base64"));
  });
});
