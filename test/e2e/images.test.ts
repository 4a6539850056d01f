/**
 * Both response formats for the OpenAI family through every protocol, the files route
 * (signatures, expiry, caching, path traversal), the SSRF guard on provider URLs, restart
 * survival, the TTL sweep and the disk cap. The OpenAI emulator stands in for the
 * upstream; faults with a custom 200 body play a provider answering what we need (a URL
 * instead of bytes, or a malicious URL).
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Fault } from "@imagegate/emulators/faults";
import { pngSize, renderPng } from "@imagegate/emulators/png";
import { UrlSigner } from "../../src/store/signing.ts";
import { type ImageHost, redirectTo, sendImage, startImageHost } from "../support/image-servers.ts";
import { ALL_PROTOCOLS, type Clients, createClients, ok } from "../support/protocols.ts";
import { EMULATOR_KEY, type Stack, startStack } from "../support/stack.ts";

const SIGNING_KEY = "e2e-url-signing-key-4b1d8f0c2a";
const DOWNLOAD_CAP = 16 * 1024 * 1024;
/** Bytes a fault makes the upstream answer with, so a download can be compared byte for byte. */
const KNOWN_PNG = renderPng(320, 200, "images-e2e");
const FILE_URL =
  /^http:\/\/127\.0\.0\.1:\d+\/v1\/images\/files\/([0-9a-f]{32})\.png\?expires=(\d+)&sig=([A-Za-z0-9_-]{43})$/;

/** A good image host (allowed by config) that also redirects and oversends; a trap that must never be hit. */
let good: ImageHost;
let trap: ImageHost;
const dirs: string[] = [];

async function newDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "imagegate-images-e2e-"));
  dirs.push(dir);
  return dir;
}

interface YamlOptions {
  dir: string;
  key?: string;
  masterKey?: string;
  rehost?: boolean;
  storage?: Record<string, number>;
}

function imagesYaml(o: YamlOptions): string {
  const storage = Object.entries(o.storage ?? {})
    .map(([k, v]) => `  ${k}: ${v}\n`)
    .join("");
  return `
general_settings:
  url_signing_key: ${o.key ?? SIGNING_KEY}
${o.masterKey ? `  master_key: ${o.masterKey}\n` : ""}  rehost_urls: ${o.rehost ?? false}
  allowed_image_hosts: ["\${OPENAI_BASE_URL}", "${good.origin}"]
  image_download_max_bytes: ${DOWNLOAD_CAP}
storage:
  dir: ${o.dir}
${storage}`;
}

/** A 200 the emulator answers instead of generating: `data` as given. */
function upstreamAnswers(data: Record<string, unknown>[], model?: string): Fault {
  return {
    status: 200,
    headers: { "content-type": "application/json" },
    body: { created: 1_700_000_000, data },
    model,
  };
}

async function download(
  url: string,
  init?: RequestInit,
): Promise<{ res: Response; bytes: Buffer }> {
  const res = await fetch(url, init);
  return { res, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** A DALL·E URL as the emulator hands it out, and the bytes it serves. */
async function emulatorImageUrl(stack: Stack): Promise<{ url: string; bytes: Buffer }> {
  const res = await fetch(`${stack.openai.baseUrl}/images/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${EMULATOR_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "dall-e-3", prompt: "a source image", response_format: "url" }),
  });
  const url = ((await res.json()) as { data: { url: string }[] }).data[0]!.url;
  const { bytes } = await download(url);
  return { url, bytes };
}

/** Sends `path` byte for byte (fetch would normalize `..` and percent-escapes). */
function rawGet(
  base: string,
  path: string,
  method = "GET",
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** One gpt-image-1 image as a URL, through the OpenAI SDK. */
async function generateUrl(stack: Stack, prompt: string): Promise<string> {
  const clients = createClients(stack);
  try {
    return (
      await clients.sdk.images.generate({ model: "gpt-image-1", prompt, response_format: "url" })
    ).data![0]!.url!;
  } finally {
    clients.close();
  }
}

async function storedFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f !== ".tmp");
}

beforeAll(async () => {
  trap = await startImageHost("127.0.0.2", { "/steal.png": sendImage(KNOWN_PNG) });
  good = await startImageHost("127.0.0.1", {
    "/to-trap.png": redirectTo(() => `${trap.origin}/steal.png`),
    "/huge.png": sendImage(Buffer.alloc(DOWNLOAD_CAP + 1)),
  });
});
afterAll(async () => {
  await good?.close();
  await trap?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("both response formats, OpenAI family", () => {
  let stack: Stack;
  let clients: Clients;
  let dir: string;
  beforeAll(async () => {
    dir = await newDir();
    stack = await startStack({ yaml: imagesYaml({ dir }) });
    clients = createClients(stack);
  });
  afterAll(async () => {
    clients?.close();
    await stack?.close();
  });
  afterEach(() => stack.openai.faults.clear());

  describe.each(ALL_PROTOCOLS)("over %s", (protocol) => {
    it("gpt-image-1 with url: the bytes are stored and a signed gateway URL serves the PNG", async () => {
      const { response } = ok(
        await clients.call(protocol, {
          model: "gpt-image-1",
          prompt: "an owl",
          size: "1024x1536",
          quality: "low",
          response_format: "url",
        }),
      );
      const image = response.data[0]!;
      expect(image.b64Json).toBeUndefined();
      expect(image.url).toMatch(FILE_URL);
      expect(image.url!.startsWith(`${stack.url}/v1/images/files/`)).toBe(true);
      const { res, bytes } = await download(image.url!);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(Number(res.headers.get("content-length"))).toBe(bytes.length);
      expect(pngSize(bytes)).toEqual({ width: 1024, height: 1536 });
      // GPT-image models reject response_format: it never reaches them.
      expect(stack.openai.requests.at(-1)!.body).not.toHaveProperty("response_format");
    });

    it("gpt-image-1 with url, n=2: each image gets its own URL, byte-identical to what the upstream sent", async () => {
      stack.openai.faults.push(
        upstreamAnswers([
          { b64_json: KNOWN_PNG.toString("base64") },
          { b64_json: KNOWN_PNG.toString("base64") },
        ]),
      );
      const { response } = ok(
        await clients.call(protocol, {
          model: "gpt-image-1",
          prompt: "two owls",
          n: 2,
          response_format: "url",
        }),
      );
      const urls = response.data.map((d) => d.url!);
      expect(urls).toHaveLength(2);
      expect(new Set(urls).size).toBe(2);
      for (const url of urls) expect((await download(url)).bytes.equals(KNOWN_PNG)).toBe(true);
    });

    it("gpt-image-1 without response_format still answers b64_json (its native format)", async () => {
      const { response } = ok(
        await clients.call(protocol, {
          model: "gpt-image-1",
          prompt: "an owl",
          quality: "low",
          size: "1024x1024",
        }),
      );
      expect(response.data[0]!.url).toBeUndefined();
      expect(pngSize(response.data[0]!.b64Json!)).toEqual({ width: 1024, height: 1024 });
    });

    it("dall-e-3 with b64_json when the upstream answers a URL: the gateway downloads and inlines it", async () => {
      const source = await emulatorImageUrl(stack);
      stack.openai.faults.push(
        upstreamAnswers([{ url: source.url, revised_prompt: "a revised lighthouse" }]),
      );
      const { response } = ok(
        await clients.call(protocol, {
          model: "dall-e-3",
          prompt: "a lighthouse",
          response_format: "b64_json",
        }),
      );
      const image = response.data[0]!;
      expect(image.url).toBeUndefined();
      expect(Buffer.from(image.b64Json!).equals(source.bytes)).toBe(true);
      expect(image.revisedPrompt).toBe("a revised lighthouse");
    });

    it("dall-e-3 with url passes the provider's own URL through (rehost_urls is off)", async () => {
      const { response } = ok(
        await clients.call(protocol, {
          model: "dall-e-3",
          prompt: "a lighthouse",
          response_format: "url",
        }),
      );
      expect(response.data[0]!.url!.startsWith(new URL(stack.openai.baseUrl).origin)).toBe(true);
    });
  });

  describe("the files route", () => {
    let url: string;
    let name: string;
    beforeAll(async () => {
      stack.openai.faults.push(upstreamAnswers([{ b64_json: KNOWN_PNG.toString("base64") }]));
      url = (
        await clients.sdk.images.generate({
          model: "gpt-image-1",
          prompt: "a file",
          response_format: "url",
        })
      ).data![0]!.url!;
      name = new URL(url).pathname.split("/").at(-1)!;
    });

    it("serves type, length, private caching within the lifetime, an ETag, and safety headers", async () => {
      const { res, bytes } = await download(url);
      expect(res.status).toBe(200);
      expect(bytes.equals(KNOWN_PNG)).toBe(true);
      expect(res.headers.get("content-length")).toBe(String(KNOWN_PNG.length));
      const maxAge = Number(
        /^private, max-age=(\d+)$/.exec(res.headers.get("cache-control") ?? "")?.[1],
      );
      expect(maxAge).toBeGreaterThan(3500);
      expect(maxAge).toBeLessThanOrEqual(3600);
      expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("content-security-policy")).toContain("sandbox");
    });

    it("answers 304 to a matching If-None-Match, and HEAD without a body", async () => {
      const etag = (await download(url)).res.headers.get("etag")!;
      for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
        const { res, bytes } = await download(url, { headers: { "if-none-match": tag } });
        expect(res.status, tag).toBe(304);
        expect(bytes.length).toBe(0);
        expect(res.headers.get("etag")).toBe(etag);
      }
      expect((await download(url, { headers: { "if-none-match": '"other"' } })).res.status).toBe(
        200,
      );
      const head = await download(url, { method: "HEAD" });
      expect(head.res.status).toBe(200);
      expect(head.res.headers.get("content-length")).toBe(String(KNOWN_PNG.length));
      expect(head.res.headers.get("content-type")).toBe("image/png");
      expect(head.bytes.length).toBe(0);
    });

    it("403 for a bad, moved, missing or expired signature", async () => {
      const u = new URL(url);
      const sig = u.searchParams.get("sig")!;
      const expires = u.searchParams.get("expires")!;
      const variants = [
        // One character changed: the first, whose six bits are all signature (the last one's
        // are not, and "…AA" would sometimes be the signature itself).
        `${u.pathname}?expires=${expires}&sig=${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`,
        `${u.pathname}?expires=${Number(expires) + 3600}&sig=${sig}`,
        `${u.pathname}?expires=${expires}`,
        `${u.pathname}?sig=${sig}`,
        u.pathname,
        // Signed for another name: signatures do not travel.
        `${u.pathname.replace(/[0-9a-f]{32}/, "0".repeat(32))}?expires=${expires}&sig=${sig}`,
        // Validly signed with the right key, but the expiry has passed.
        `${u.pathname}?${new UrlSigner(SIGNING_KEY).query(name, Date.now() - 1000)}`,
        // Another key's signature.
        `${u.pathname}?${new UrlSigner("some other signing key!!").query(name, Date.now() + 60_000)}`,
      ];
      for (const path of variants) {
        const res = await rawGet(stack.url, path);
        expect(res.status, path).toBe(403);
        expect(JSON.parse(res.body).error).toMatchObject({
          type: "permission_error",
          message: expect.stringMatching(/signature/),
        });
      }
    });

    it("without a valid signature, an id that exists and one that does not look the same", async () => {
      const existing = await rawGet(
        stack.url,
        `/v1/images/files/${name}?expires=9999999999&sig=${"A".repeat(43)}`,
      );
      const missing = await rawGet(
        stack.url,
        `/v1/images/files/${"f".repeat(32)}.png?expires=9999999999&sig=${"A".repeat(43)}`,
      );
      expect(existing.status).toBe(403);
      expect(missing.status).toBe(403);
      expect(existing.body).toBe(missing.body);
      expect(existing.headers["content-type"]).toBe(missing.headers["content-type"]);
    });

    it("404 for a validly signed name that does not exist", async () => {
      const signer = new UrlSigner(SIGNING_KEY);
      for (const other of [`${"f".repeat(32)}.png`, name.replace(".png", ".webp")]) {
        const res = await rawGet(
          stack.url,
          `/v1/images/files/${other}?${signer.query(other, Date.now() + 60_000)}`,
        );
        expect(res.status, other).toBe(404);
        expect(JSON.parse(res.body).error.code).toBe("image_not_found");
      }
    });

    it("path traversal and odd names never reach the filesystem outside the store", async () => {
      const q = new URL(url).search;
      const id = name.split(".")[0]!;
      const paths = [
        "/v1/images/files/../../../../etc/passwd",
        `/v1/images/files/..%2F..%2F..%2Fetc%2Fpasswd${q}`,
        `/v1/images/files/%2e%2e/%2e%2e/etc/passwd${q}`,
        `/v1/images/files/..%5c..%5cetc%5cpasswd${q}`,
        `/v1/images/files/${id}.png%00.txt${q}`,
        `/v1/images/files/${id}.png/..${q}`,
        `/v1/images/files/${id}%2Epng${q}`,
        `/v1/images/files/${id}.PNG${q}`,
        `/v1/images/files/${id.toUpperCase()}.png${q}`,
        `/v1/images/files/${id}.exe${q}`,
        `/v1/images/files/${id}${q}`,
        `/v1/images/files/.tmp${q}`,
        `/v1/images/files/${q}`,
        `/v1/images/files/sub/${name}${q}`,
        `/v1/images/files//etc/passwd${q}`,
        "/v1/images/files/%2Fetc%2Fpasswd",
      ];
      for (const path of paths) {
        const res = await rawGet(stack.url, path);
        expect([403, 404], path).toContain(res.status);
        expect(res.headers["content-type"], path).toBe("application/json");
        expect(res.body, path).not.toMatch(/root:|PNG/);
      }
    });

    it("serves over HTTP/2 (h2c) as well", async () => {
      const session = http2.connect(stack.url);
      try {
        const u = new URL(url);
        const got = await new Promise<{ status: number; type: unknown; body: Buffer }>(
          (resolve, reject) => {
            const req = session.request({ ":path": u.pathname + u.search });
            const chunks: Buffer[] = [];
            let status = 0;
            let type: unknown;
            req.on("response", (h) => {
              status = Number(h[":status"]);
              type = h["content-type"];
            });
            req.on("data", (c: Buffer) => chunks.push(c));
            req.on("end", () => resolve({ status, type, body: Buffer.concat(chunks) }));
            req.on("error", reject);
            req.end();
          },
        );
        expect(got.status).toBe(200);
        expect(got.type).toBe("image/png");
        expect(got.body.equals(KNOWN_PNG)).toBe(true);
      } finally {
        session.close();
      }
    });

    it("other methods are refused", async () => {
      const res = await rawGet(stack.url, new URL(url).pathname + new URL(url).search, "DELETE");
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe("GET, HEAD");
      expect((await download(url)).res.status).toBe(200);
    });
  });

  describe("the SSRF guard on provider URLs", () => {
    async function b64WithUpstreamUrl(url: string) {
      stack.openai.faults.push(upstreamAnswers([{ url }], "dall-e-3"));
      const res = await fetch(`${stack.url}/v1/images/generations`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "dall-e-3", prompt: "x", response_format: "b64_json" }),
      });
      return {
        status: res.status,
        body: (await res.json()) as { error: { type: string; code: string; message: string } },
      };
    }

    it("a URL on a host that is not allowed is refused, and that host never hears from the gateway", async () => {
      for (const url of [
        `${trap.origin}/steal.png`,
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::1]:22/",
        "file:///etc/passwd",
        `${trap.origin.replace("127.0.0.2", "127.0.0.1")}/steal.png`, // right address, wrong port
      ]) {
        const { status, body } = await b64WithUpstreamUrl(url);
        expect(status, url).toBe(502);
        expect(body.error, url).toMatchObject({ type: "server_error", code: "image_url_refused" });
      }
      expect(trap.requests).toEqual([]);
    });

    it("a redirect from an allowed host to elsewhere is not followed", async () => {
      const { status, body } = await b64WithUpstreamUrl(`${good.origin}/to-trap.png`);
      expect(status).toBe(502);
      expect(body.error.code).toBe("image_url_refused");
      expect(good.requests).toContain("/to-trap.png");
      expect(trap.requests).toEqual([]);
    });

    it("an oversized image is cut off at the download cap", async () => {
      const { status, body } = await b64WithUpstreamUrl(`${good.origin}/huge.png`);
      expect(status).toBe(502);
      expect(body.error.code).toBe("image_too_large");
    });

    it("the upstream's URL query (its signature) never appears in an error", async () => {
      const { body } = await b64WithUpstreamUrl(`${trap.origin}/steal.png?sig=upstream-secret`);
      expect(body.error.message).not.toContain("upstream-secret");
    });
  });
});

describe("rehost_urls", () => {
  let stack: Stack;
  let clients: Clients;
  beforeAll(async () => {
    stack = await startStack({ yaml: imagesYaml({ dir: await newDir(), rehost: true }) });
    clients = createClients(stack);
  });
  afterAll(async () => {
    clients?.close();
    await stack?.close();
  });
  afterEach(() => stack.openai.faults.clear());

  it.each(["rest", "grpc"] as const)(
    "over %s, dall-e-3 url is downloaded and re-served from the gateway's store",
    async (protocol) => {
      const source = await emulatorImageUrl(stack);
      stack.openai.faults.push(upstreamAnswers([{ url: source.url }]));
      const { response } = ok(
        await clients.call(protocol, {
          model: "dall-e-3",
          prompt: "a lighthouse",
          response_format: "url",
        }),
      );
      const url = response.data[0]!.url!;
      expect(url).toMatch(FILE_URL);
      const { res, bytes } = await download(url);
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(bytes.equals(source.bytes)).toBe(true);
    },
  );

  it("a malicious URL is refused here too", async () => {
    stack.openai.faults.push(upstreamAnswers([{ url: `${trap.origin}/steal.png` }]));
    const outcome = await clients.call("rest", {
      model: "dall-e-3",
      prompt: "x",
      response_format: "url",
    });
    expect(outcome).toMatchObject({ ok: false, httpStatus: 502, code: "image_url_refused" });
    expect(trap.requests).toEqual([]);
  });
});

describe("lifetime of stored images", () => {
  it("a URL handed out before a restart works after it, with the same folder and key", async () => {
    const dir = await newDir();
    const first = await startStack({ yaml: imagesYaml({ dir }) });
    first.openai.faults.push(upstreamAnswers([{ b64_json: KNOWN_PNG.toString("base64") }]));
    const clients = createClients(first);
    const { response } = ok(
      await clients.call("grpc", { model: "gpt-image-1", prompt: "kept", response_format: "url" }),
    );
    clients.close();
    const url = new URL(response.data[0]!.url!);
    await first.close();

    const second = await startStack({ yaml: imagesYaml({ dir }) });
    try {
      const { res, bytes } = await download(`${second.url}${url.pathname}${url.search}`);
      expect(res.status).toBe(200);
      expect(bytes.equals(KNOWN_PNG)).toBe(true);
    } finally {
      await second.close();
    }
    // A gateway with another key does not honour the old signatures.
    const rekeyed = await startStack({ yaml: imagesYaml({ dir, key: "a brand new signing key" }) });
    try {
      expect((await download(`${rekeyed.url}${url.pathname}${url.search}`)).res.status).toBe(403);
    } finally {
      await rekeyed.close();
    }
  });

  it("images expire after the TTL: the URL stops working and the sweep removes the file", async () => {
    const dir = await newDir();
    const stack = await startStack({
      // Long enough that a loaded machine still downloads the image before it expires.
      yaml: imagesYaml({ dir, storage: { ttl_seconds: 3, sweep_interval_seconds: 0.2 } }),
    });
    try {
      stack.openai.faults.push(upstreamAnswers([{ b64_json: KNOWN_PNG.toString("base64") }]));
      const url = await generateUrl(stack, "brief");
      expect(await storedFiles(dir)).toHaveLength(1);
      const maxAge = Number(
        /max-age=(\d+)/.exec((await download(url)).res.headers.get("cache-control")!)![1],
      );
      expect(maxAge).toBeLessThanOrEqual(3);
      await expect.poll(() => storedFiles(dir), { timeout: 15_000, interval: 100 }).toEqual([]);
      expect((await download(url)).res.status).toBe(403); // the signature's expiry has passed
      // Re-signed into the future, the file itself is still gone.
      const name = new URL(url).pathname.split("/").at(-1)!;
      const resigned = `${stack.url}/v1/images/files/${name}?${new UrlSigner(SIGNING_KEY).query(name, Date.now() + 60_000)}`;
      expect((await download(resigned)).res.status).toBe(404);
    } finally {
      await stack.close();
    }
  });

  it("the disk cap evicts the oldest images to make room", async () => {
    const dir = await newDir();
    const stack = await startStack({
      yaml: imagesYaml({ dir, storage: { max_bytes: Math.floor(KNOWN_PNG.length * 2.5) } }),
    });
    const clients = createClients(stack);
    try {
      const urls: string[] = [];
      for (let i = 0; i < 3; i++) {
        stack.openai.faults.push(upstreamAnswers([{ b64_json: KNOWN_PNG.toString("base64") }]));
        const { response } = ok(
          await clients.call("rest", {
            model: "gpt-image-1",
            prompt: `image ${i}`,
            response_format: "url",
          }),
        );
        urls.push(response.data[0]!.url!);
      }
      expect((await download(urls[0]!)).res.status).toBe(404);
      expect((await download(urls[1]!)).res.status).toBe(200);
      expect((await download(urls[2]!)).res.status).toBe(200);
      expect(await storedFiles(dir)).toHaveLength(2);
    } finally {
      clients.close();
      await stack.close();
    }
  });

  it("the URL is the credential: no gateway key is needed to download", async () => {
    const masterKey = "sk-gateway-master-key-for-files";
    const stack = await startStack({ yaml: imagesYaml({ dir: await newDir(), masterKey }) });
    try {
      const res = await fetch(`${stack.url}/v1/images/generations`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${masterKey}` },
        body: JSON.stringify({ model: "gpt-image-1", prompt: "x", response_format: "url" }),
      });
      expect(res.status).toBe(200);
      const url = ((await res.json()) as { data: { url: string }[] }).data[0]!.url;
      expect((await download(url)).res.status).toBe(200);
    } finally {
      await stack.close();
    }
  });

  it("public_url is the base of the URLs handed out", async () => {
    const dir = await newDir();
    const stack = await startStack({
      yaml: `${imagesYaml({ dir })}server:\n  public_url: https://images.example.com/gw/\n`,
    });
    try {
      const url = await generateUrl(stack, "x");
      expect(url).toMatch(
        /^https:\/\/images\.example\.com\/gw\/v1\/images\/files\/[0-9a-f]{32}\.png\?expires=\d+&sig=/,
      );
    } finally {
      await stack.close();
    }
  });
});
