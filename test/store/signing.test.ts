import { describe, expect, it } from "vitest";
import { UrlSigner } from "../../src/store/signing.ts";

const NAME = "0123456789abcdef0123456789abcdef.png";
const NOW = 1_800_000_000_000;

function parts(signer: UrlSigner, name = NAME, expiresAt = NOW + 3_600_000) {
  const q = new URLSearchParams(signer.query(name, expiresAt));
  return { expires: q.get("expires"), sig: q.get("sig") };
}

describe("UrlSigner", () => {
  const signer = new UrlSigner("a configured key, long enough");

  it("accepts its own signature until the expiry, and returns that expiry", () => {
    const { expires, sig } = parts(signer);
    expect(expires).toBe(String((NOW + 3_600_000) / 1000));
    expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(NAME, expires, sig, NOW)).toBe(NOW + 3_600_000);
    expect(signer.verify(NAME, expires, sig, NOW + 3_599_999)).toBe(NOW + 3_600_000);
    expect(signer.verify(NAME, expires, sig, NOW + 3_600_000)).toBeUndefined();
  });

  it("rejects another name, another extension, a moved expiry or a changed signature", () => {
    const { expires, sig } = parts(signer);
    expect(
      signer.verify("fedcba9876543210fedcba9876543210.png", expires, sig, NOW),
    ).toBeUndefined();
    expect(signer.verify(NAME.replace(".png", ".svg"), expires, sig, NOW)).toBeUndefined();
    expect(signer.verify(NAME, String(Number(expires) + 3600), sig, NOW)).toBeUndefined();
    const flipped = `${sig!.slice(0, -1)}${sig!.endsWith("A") ? "B" : "A"}`;
    expect(signer.verify(NAME, expires, flipped, NOW)).toBeUndefined();
  });

  it("rejects malformed or missing parameters", () => {
    const { expires, sig } = parts(signer);
    for (const [e, s] of [
      [null, sig],
      [expires, null],
      ["", sig],
      [`${expires}.0`, sig],
      [`0${expires}`, sig],
      ["-1", sig],
      [expires, `${sig}=`],
      [expires, sig!.slice(1)],
      [expires, "x".repeat(43)],
    ] as const) {
      expect(signer.verify(NAME, e, s, NOW)).toBeUndefined();
    }
  });

  it("another key's signature, or a generated key's after a restart, does not verify", () => {
    const { expires, sig } = parts(signer);
    expect(
      new UrlSigner("a different key, long enough").verify(NAME, expires, sig, NOW),
    ).toBeUndefined();
    const generated = new UrlSigner();
    expect(generated.generated).toBe(true);
    expect(signer.generated).toBe(false);
    const g = parts(generated);
    expect(generated.verify(NAME, g.expires, g.sig, NOW)).toBeDefined();
    expect(new UrlSigner().verify(NAME, g.expires, g.sig, NOW)).toBeUndefined();
  });
});
