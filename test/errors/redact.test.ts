import { describe, expect, it } from "vitest";
import { redact, redactValue, registerSecrets } from "../../src/errors/redact.ts";

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

  it("removes hostnames, IPv6 addresses, file paths and passwords (the README's promise)", () => {
    const cases: [string, string][] = [
      ["getaddrinfo ENOTFOUND images-proxy", "getaddrinfo ENOTFOUND [host]"],
      ["cannot reach api.internal.corp:8443 now", "cannot reach [host] now"],
      ["upstream db-1.prod.svc said no", "upstream [host] said no"],
      ["see platform.openai.com.", "see [host]."],
      ["localhost:9000 refused", "[host] refused"],
      ["connect ECONNREFUSED [fd00:ec2::254]:80", "connect ECONNREFUSED [host]"],
      ["from 2001:db8:85a3::8a2e:370:7334 at", "from [host] at"],
      ["peer ::1 closed", "peer [host] closed"],
      ["peer fe80::1%eth0 closed", "peer [host] closed"],
      [
        "ENOENT: no such file or directory, open '/secrets/sa.json'",
        "ENOENT: no such file or directory, open '[path]'",
      ],
      ["at /home/ops/imagegate/src/x.ts:10:3", "at [path]"],
      ["read C:\\Users\\ops\\key.json failed", "read [path] failed"],
      ["key in ~/.aws/credentials", "key in [path]"],
      ["login failed: password=hunter22 user=x", "login failed: password=[redacted] user=x"],
      ['{"password": "hunter22", "n": 1}', '{"password": [redacted], "n": 1}'],
      ["client_secret: abc.def-123", "client_secret: [redacted]"],
      ["redis://:s3cret@redis.internal:6379/0 down", "[url] down"],
      ["postgresql://imagegate:s3cret@db/imagegate", "[url]"],
      ["Basic dXNlcjpwYXNz rejected", "Basic [redacted] rejected"],
      [
        "key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n bad",
        "key [redacted-key]\n bad",
      ],
    ];
    expect(cases.map(([input]) => redact(input))).toEqual(cases.map(([, output]) => output));
  });

  it("keeps model names, sizes, times and the gateway's own paths", () => {
    for (const msg of [
      "Invalid size '1024x1536' for bedrock/amazon.titan-image-generator-v1; use 1024x1024.",
      "stability.sd3-5-large-v1:0 and us.amazon.nova-canvas-v1:0 and gpt-image-1.5",
      "vertex_ai/imagen-3.0-generate-002 at 12:30:45; mask.png must be a PNG",
      "Unknown request URL: POST /v1/images/generations. Use image/png or openai/dall-e-3.",
      "Invalid value for 'n': 2. 'n' must be 1 / 2 and/or e.g. 3",
    ])
      expect(redact(msg)).toBe(msg);
  });

  it("is idempotent", () => {
    registerSecrets(["master-key-0123456789"]);
    for (const msg of [
      "password=x token: y https://a.example.com/p?sig=1 10.0.0.1 ::1 /etc/x master-key-0123456789",
      'Bearer abc "secret": "x" ENOTFOUND h',
    ]) {
      const once = redact(msg);
      expect(redact(once)).toBe(once);
    }
  });

  it("scrubs every string and key of a JSON value, and stops at a depth", () => {
    registerSecrets(["provider-key-abcdef"]);
    const deep: unknown[] = [];
    let cursor = deep;
    for (let i = 0; i < 100; i += 1) {
      const next: unknown[] = ["provider-key-abcdef"];
      cursor.push(next);
      cursor = next;
    }
    const out = redactValue({
      "provider-key-abcdef": { list: ["x provider-key-abcdef", 1, null, { host: "10.1.2.3" }] },
      deep,
    });
    expect(JSON.stringify(out)).not.toContain("provider-key-abcdef");
    expect(out).toMatchObject({
      "[redacted]": { list: ["x [redacted]", 1, null, { host: "[host]" }] },
    });
  });

  it("removes a registered secret also as JSON-escaped and URL-encoded text", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\nAAAA/BBBB+CCCC\nDDDD==\n-----END PRIVATE KEY-----\n";
    const odd = 'pa"ss w/rd\\x';
    registerSecrets([pem, odd]);
    for (const text of [
      JSON.stringify({ k: odd }),
      encodeURIComponent(odd),
      "AAAA/BBBB+CCCCDDDD==",
      JSON.stringify(pem),
    ]) {
      const out = redact(text);
      expect(out).not.toContain("BBBB+CCCC");
      expect(out).not.toContain("ss w/rd");
      expect(out).not.toContain(encodeURIComponent(odd));
    }
  });

  it("leaves ordinary messages as they are", () => {
    const msg = "Invalid value for 'n': 2. For openai/dall-e-3, 'n' must be only 1.";
    expect(redact(msg)).toBe(msg);
  });
});
