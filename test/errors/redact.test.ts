import { describe, expect, it } from "vitest";
import { redact, registerSecrets } from "../../src/errors/redact.ts";

describe("redact", () => {
  it("removes credentials, signed URLs and hosts from upstream messages", () => {
    const cases: [string, string][] = [
      [
        "Incorrect API key provided: sk-proj-abc123def456. See https://platform.openai.com/account",
        "Incorrect API key provided: [redacted-key]. See [url]",
      ],
      [
        "download failed: https://bucket.s3.amazonaws.com/x.png?X-Amz-Signature=abcd&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE",
        "download failed: [url]",
      ],
      ["Authorization: Bearer ya29.a0AfH6SMBx-token", "Authorization: Bearer [redacted]"],
      ["token ya29.a0AfH6SMBxyz expired", "token [redacted-token] expired"],
      [
        "assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl rejected",
        "assertion [redacted-token] rejected",
      ],
      [
        "API key AIzaSyA-1234567890abcdefghijklmnopqrstu not valid",
        "API key [redacted-key] not valid",
      ],
      ["access key AKIAIOSFODNN7EXAMPLE unknown", "access key [redacted-key] unknown"],
      ["connect ECONNREFUSED 10.0.3.17:8443", "connect ECONNREFUSED [host]"],
      ["retry with key=abc123secret&x=1", "retry with key=[redacted]&x=1"],
    ];
    for (const [input, output] of cases) expect(redact(input)).toBe(output);
  });

  it("removes every registered secret wherever it appears", () => {
    registerSecrets(["my-azure-key-0042", undefined, "abc"]);
    expect(redact("upstream said: bad key my-azure-key-0042 (my-azure-key-0042)")).toBe(
      "upstream said: bad key [redacted] ([redacted])",
    );
    // Too short to be a secret: left alone.
    expect(redact("abc is fine")).toBe("abc is fine");
  });

  it("leaves ordinary messages as they are", () => {
    const msg = "Invalid value for 'n': 2. For openai/dall-e-3, 'n' must be only 1.";
    expect(redact(msg)).toBe(msg);
  });
});
