/**
 * The local-filesystem store: atomic writes, metadata that survives a reopen, expiry and
 * sweeping, the disk cap.
 */
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/logger.ts";
import { ImageFiles } from "../../src/store/files.ts";
import { openLocalStore } from "../../src/store/local.ts";
import { UrlSigner } from "../../src/store/signing.ts";
import { parseImageName } from "../../src/store/store.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagegate-store-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A clock the test moves by hand. */
function clock(start = 1_800_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

async function bytesOf(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Files under their final name (temp files live in .tmp/). */
async function finalFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f !== ".tmp");
}

describe("local store", () => {
  it("stores bytes and serves them back with type, size, etag and expiry", async () => {
    const c = clock();
    const store = await openLocalStore({ dir, ttlSeconds: 3600, maxBytes: 1 << 20, now: c.now });
    const image = await store.put(Buffer.from("png bytes"), { mediaType: "image/png" });
    expect(parseImageName(image.name)).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{32}$/),
      ext: "png",
    });
    expect(image).toMatchObject({
      mediaType: "image/png",
      size: 9,
      expiresAt: c.now() + 3_600_000,
    });
    expect(image.etag).toMatch(/^"[0-9a-f]{32}"$/);
    const got = await store.get(image.name);
    expect(got?.image).toEqual(image);
    expect(await text(got!.body)).toBe("png bytes");
    expect(await store.head(image.name)).toEqual(image);
  });

  it("names files by media type and treats unknown types as opaque bytes", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    expect((await store.put(Buffer.from("j"), { mediaType: "image/jpeg" })).name).toMatch(/\.jpg$/);
    expect((await store.put(Buffer.from("w"), { mediaType: "image/webp; q=1" })).name).toMatch(
      /\.webp$/,
    );
    expect((await store.put(Buffer.from("s"), { mediaType: "image/svg+xml" })).name).toMatch(
      /\.svg$/,
    );
    const odd = await store.put(Buffer.from("?"), { mediaType: "text/html" });
    expect(odd).toMatchObject({ mediaType: "application/octet-stream" });
    expect(odd.name).toMatch(/\.bin$/);
  });

  it("a name with the wrong extension, or not a name at all, finds nothing", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    const image = await store.put(Buffer.from("x"), { mediaType: "image/png" });
    const id = image.name.split(".")[0]!;
    for (const name of [
      `${id}.jpg`,
      `${id}.PNG`,
      `${id.toUpperCase()}.png`,
      `../${image.name}`,
      `${id}`,
      "",
      ".tmp",
    ]) {
      expect(await store.get(name)).toBeUndefined();
      expect(await store.head(name)).toBeUndefined();
    }
  });

  it("streams a body to disk and makes it visible only once complete", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* slow() {
      yield Buffer.from("first half, ");
      await gate;
      yield Buffer.from("second half");
    }
    const pending = store.put(slow(), { mediaType: "image/png" });
    await new Promise((r) => setTimeout(r, 50));
    expect(await finalFiles()).toEqual([]); // half-written: only a temp file exists
    expect(await readdir(join(dir, ".tmp"))).toHaveLength(1);
    release();
    const image = await pending;
    expect(await finalFiles()).toHaveLength(1);
    expect(await readdir(join(dir, ".tmp"))).toEqual([]);
    expect(await text((await store.get(image.name))!.body)).toBe("first half, second half");
  });

  it("a failed or aborted write leaves nothing behind", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    async function* broken() {
      yield Buffer.from("some bytes");
      throw new Error("upstream went away");
    }
    await expect(store.put(broken(), { mediaType: "image/png" })).rejects.toThrow(
      "upstream went away",
    );
    const abort = new AbortController();
    async function* aborted() {
      yield Buffer.from("a");
      abort.abort(new Error("client gone"));
      yield Buffer.from("b");
    }
    await expect(
      store.put(aborted(), { mediaType: "image/png", signal: abort.signal }),
    ).rejects.toThrow("client gone");
    expect(await finalFiles()).toEqual([]);
    expect(await readdir(join(dir, ".tmp"))).toEqual([]);
    expect(store.usedBytes).toBe(0);
  });

  it("survives a restart: a reopened store finds every live image with its metadata", async () => {
    const c = clock();
    const first = await openLocalStore({ dir, ttlSeconds: 3600, maxBytes: 1 << 20, now: c.now });
    const png = await first.put(Buffer.from("png"), { mediaType: "image/png" });
    const webp = await first.put(Buffer.from("webp!"), { mediaType: "image/webp" });
    await first.close();

    c.advance(60_000);
    const second = await openLocalStore({ dir, ttlSeconds: 10, maxBytes: 1 << 20, now: c.now });
    // The expiry promised at write time holds, whatever the TTL is now.
    expect(await second.head(png.name)).toEqual(png);
    expect(await second.head(webp.name)).toEqual(webp);
    expect(await text((await second.get(webp.name))!.body)).toBe("webp!");
    expect(second.usedBytes).toBe(8);
    expect(second.count).toBe(2);
  });

  it("at open, drops expired images and stale temp files, and leaves foreign files alone", async () => {
    const c = clock();
    const first = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20, now: c.now });
    const image = await first.put(Buffer.from("old"), { mediaType: "image/png" });
    await writeFile(join(dir, "README.txt"), "not an image");
    const staleTmp = join(dir, ".tmp", "0123.999");
    await writeFile(staleTmp, "half");
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(staleTmp, old, old);
    await writeFile(join(dir, ".tmp", "fresh.1"), "another process writing");

    c.advance(61_000);
    const second = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20, now: c.now });
    expect(await second.head(image.name)).toBeUndefined();
    expect((await finalFiles()).sort()).toEqual(["README.txt"]);
    expect(await readdir(join(dir, ".tmp"))).toEqual(["fresh.1"]);
  });

  it("expires images after the TTL and sweeps them off the disk", async () => {
    const c = clock();
    const store = await openLocalStore({ dir, ttlSeconds: 30, maxBytes: 1 << 20, now: c.now });
    const a = await store.put(Buffer.from("a"), { mediaType: "image/png" });
    c.advance(20_000);
    const b = await store.put(Buffer.from("b"), { mediaType: "image/png" });
    c.advance(10_000); // a is exactly at its expiry: gone
    expect(await store.get(a.name)).toBeUndefined();
    expect(await store.head(b.name)).toBeDefined();
    expect(await store.sweep()).toBe(0); // reading a already removed it
    expect(await finalFiles()).toHaveLength(1);
    c.advance(20_000);
    expect(await store.sweep()).toBe(1);
    expect(await finalFiles()).toEqual([]);
    expect(store.usedBytes).toBe(0);
  });

  it("sweeps in the background", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 1, maxBytes: 1 << 20 });
    const files = new ImageFiles({
      store,
      signer: new UrlSigner(),
      sweepIntervalMs: 100,
      logger: silentLogger,
    });
    try {
      await store.put(Buffer.from("short-lived"), { mediaType: "image/png" });
      expect(await finalFiles()).toHaveLength(1);
      await expect.poll(finalFiles, { timeout: 4000, interval: 100 }).toEqual([]);
    } finally {
      await files.close();
    }
  });

  it("caps disk use: the oldest images are evicted first", async () => {
    const c = clock();
    const store = await openLocalStore({ dir, ttlSeconds: 3600, maxBytes: 250, now: c.now });
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      names.push((await store.put(Buffer.alloc(100, i), { mediaType: "image/png" })).name);
      c.advance(1000);
    }
    // 300 bytes asked for with a 250-byte cap: the first (oldest) image made room.
    expect(await store.head(names[0]!)).toBeUndefined();
    expect(await store.head(names[1]!)).toBeDefined();
    expect(await store.head(names[2]!)).toBeDefined();
    expect(store.usedBytes).toBe(200);
    expect(await finalFiles()).toHaveLength(2);
  });

  it("counts a write in progress against the cap, and refuses an image larger than the cap", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 3600, maxBytes: 100 });
    const kept = await store.put(Buffer.alloc(60), { mediaType: "image/png" });
    async function* big() {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(30);
    }
    await expect(store.put(big(), { mediaType: "image/png" })).rejects.toMatchObject({
      kind: "upstream",
      code: "image_store_full",
      httpStatus: 503,
    });
    // It evicted what it could on the way, then gave up; nothing half-written remains.
    expect(await store.head(kept.name)).toBeUndefined();
    expect(await finalFiles()).toEqual([]);
    expect(await readdir(join(dir, ".tmp"))).toEqual([]);
    expect(store.usedBytes).toBe(0);
    const fits = await store.put(Buffer.alloc(100), { mediaType: "image/png" });
    expect(await store.head(fits.name)).toBeDefined();
  });

  it("a file removed behind the store's back is gone, not an error", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    const image = await store.put(Buffer.from("x"), { mediaType: "image/png" });
    for (const f of await finalFiles()) await rm(join(dir, f));
    expect(await store.get(image.name)).toBeUndefined();
    expect(store.usedBytes).toBe(0);
  });

  it("a reader already streaming an image finishes even if it is deleted meanwhile", async () => {
    const store = await openLocalStore({ dir, ttlSeconds: 60, maxBytes: 1 << 20 });
    const payload = Buffer.alloc(512 * 1024, 7);
    const image = await store.put(payload, { mediaType: "image/png" });
    const got = await store.get(image.name);
    await store.delete(image.name);
    expect(await store.head(image.name)).toBeUndefined();
    expect((await bytesOf(got!.body)).equals(payload)).toBe(true);
  });
});
