import { describe, expect, it } from "vitest";
import {
  isPublicAddress,
  parseHostRule,
  providerHostRules,
  refusal,
} from "../../src/store/host-policy.ts";

const rules = (...entries: string[]) => entries.map(parseHostRule);
const allowed = (url: string, r: ReturnType<typeof rules>) =>
  refusal(new URL(url), r) === undefined;

describe("parseHostRule", () => {
  it("reads hosts, host:port, wildcards and URLs", () => {
    expect(parseHostRule("images.example.com")).toMatchObject({
      host: "images.example.com",
      port: undefined,
      scheme: undefined,
      wildcard: false,
      ip: false,
    });
    expect(parseHostRule("Images.Example.COM:8443")).toMatchObject({
      host: "images.example.com",
      port: 8443,
    });
    expect(parseHostRule("*.cdn.example.com")).toMatchObject({
      host: "cdn.example.com",
      wildcard: true,
    });
    expect(parseHostRule("http://127.0.0.1:4010/v1")).toMatchObject({
      scheme: "http:",
      host: "127.0.0.1",
      port: 4010,
      ip: true,
    });
    expect(parseHostRule("https://files.example.com")).toMatchObject({
      scheme: "https:",
      port: 443,
    });
    expect(parseHostRule("[::1]:9000")).toMatchObject({ host: "[::1]", port: 9000, ip: true });
  });

  it("rejects what is not a host entry", () => {
    for (const bad of [
      "ftp://x.example.com",
      "user:pw@x.example.com",
      "https://u:p@x.example.com",
      "x.example.com/path",
      "x.example.com?q",
      "*.127.0.0.1",
      "http://",
      "a b",
    ]) {
      expect(() => parseHostRule(bad), bad).toThrow();
    }
  });
});

describe("refusal", () => {
  it("a provider's hosts: exact name, https, port 443 only", () => {
    const r = providerHostRules(["oaidalleapiprodscus.blob.core.windows.net"]);
    expect(
      allowed("https://oaidalleapiprodscus.blob.core.windows.net/private/img.png?sig=x", r),
    ).toBe(true);
    expect(allowed("https://OAIDALLEAPIPRODSCUS.blob.core.windows.net:443/a.png", r)).toBe(true);
    expect(allowed("http://oaidalleapiprodscus.blob.core.windows.net/a.png", r)).toBe(false);
    expect(allowed("https://oaidalleapiprodscus.blob.core.windows.net:8443/a.png", r)).toBe(false);
    expect(allowed("https://evil.blob.core.windows.net/a.png", r)).toBe(false);
    expect(allowed("https://oaidalleapiprodscus.blob.core.windows.net.evil.com/a.png", r)).toBe(
      false,
    );
    expect(allowed("https://x.oaidalleapiprodscus.blob.core.windows.net/a.png", r)).toBe(false);
  });

  it("config hosts: default ports unless a port is given; wildcards match subdomains only", () => {
    const r = rules(
      "images.example.com",
      "*.cdn.example.com",
      "files.example.com:8443",
      "https://secure.example.com",
    );
    expect(allowed("https://images.example.com/a.png", r)).toBe(true);
    expect(allowed("http://images.example.com/a.png", r)).toBe(true);
    expect(allowed("https://images.example.com:444/a.png", r)).toBe(false);
    expect(allowed("https://a.b.cdn.example.com/a.png", r)).toBe(true);
    expect(allowed("https://cdn.example.com/a.png", r)).toBe(false);
    expect(allowed("https://evilcdn.example.com/a.png", r)).toBe(false);
    expect(allowed("https://files.example.com:8443/a.png", r)).toBe(true);
    expect(allowed("https://files.example.com/a.png", r)).toBe(false);
    expect(allowed("https://secure.example.com/a.png", r)).toBe(true);
    expect(allowed("http://secure.example.com/a.png", r)).toBe(false);
  });

  it("an IP address is fetched only when config lists that address, in any spelling", () => {
    const r = rules("http://127.0.0.1:4010", "images.example.com");
    expect(allowed("http://127.0.0.1:4010/img.png", r)).toBe(true);
    expect(allowed("http://0x7f.0.0.1:4010/img.png", r)).toBe(true); // the same address
    expect(allowed("http://2130706433:4010/img.png", r)).toBe(true);
    expect(allowed("http://127.0.0.1:4011/img.png", r)).toBe(false);
    expect(allowed("http://127.0.0.2:4010/img.png", r)).toBe(false);
    expect(allowed("http://[::1]:4010/img.png", r)).toBe(false);
    expect(allowed("http://169.254.169.254/latest/meta-data/", r)).toBe(false);
    expect(allowed("http://10.0.0.1/img.png", rules("*.example.com"))).toBe(false);
  });

  it("only http and https, never with credentials", () => {
    const r = rules("images.example.com");
    expect(refusal(new URL("file:///etc/passwd"), r)).toMatch(/scheme file/);
    expect(refusal(new URL("gopher://images.example.com/"), r)).toMatch(/scheme/);
    expect(refusal(new URL("https://user:pw@images.example.com/a.png"), r)).toMatch(/credentials/);
    expect(refusal(new URL("https://other.example.com/a.png"), r)).toMatch(
      /not an allowed image host/,
    );
  });
});

describe("isPublicAddress", () => {
  it("tells public addresses from loopback, private, link-local and reserved ones", () => {
    for (const a of ["8.8.8.8", "20.60.1.2", "2606:4700::1111"])
      expect(isPublicAddress(a), a).toBe(true);
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "::1",
      "::",
      "fe80::1",
      "fd00::1",
      "::ffff:127.0.0.1",
      "::ffff:10.0.0.1",
      "64:ff9b::a00:1",
      "2002:a00:1::",
      "not an address",
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
  });
});
