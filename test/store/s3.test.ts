/**
 * The S3 backend against a real S3-compatible server (s3rver, in-process): round trips,
 * expiry, the sweep, presigned URLs.
 */
import { text } from "node:stream/consumers";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/logger.ts";
import { ImageFiles } from "../../src/store/files.ts";
import { S3ImageStore } from "../../src/store/s3.ts";
import type { S3Settings } from "../../src/store/settings.ts";
import { UrlSigner } from "../../src/store/signing.ts";
import { type LocalS3, S3_ACCESS_KEY, S3_SECRET_KEY, startS3 } from "../support/s3.ts";

let s3: LocalS3;
let raw: S3Client;
beforeAll(async () => {
  s3 = await startS3();
  raw = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
  });
});
afterAll(async () => {
  raw?.destroy();
  await s3?.close();
});

function settings(extra: Partial<S3Settings> = {}): S3Settings {
  return {
    bucket: s3.bucket,
    prefix: "test/",
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    presignedUrls: false,
    ...extra,
  };
}

async function keys(prefix: string): Promise<string[]> {
  const page = await raw.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

describe("S3 store", () => {
  it("round-trips bytes and streams under the prefix, with type, size, etag and expiry", async () => {
    const store = new S3ImageStore({
      settings: settings({ prefix: "roundtrip/" }),
      ttlSeconds: 600,
    });
    try {
      const before = Date.now();
      const image = await store.put(Buffer.from("png bytes"), { mediaType: "image/png" });
      expect(image).toMatchObject({
        mediaType: "image/png",
        size: 9,
        etag: expect.stringMatching(/^".+"$/),
      });
      expect(image.expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
      expect(await keys("roundtrip/")).toEqual([`roundtrip/${image.name}`]);

      const head = await store.head(image.name);
      expect(head).toMatchObject({
        name: image.name,
        mediaType: "image/png",
        size: 9,
        expiresAt: image.expiresAt,
      });
      const got = await store.get(image.name);
      expect(await text(got!.body)).toBe("png bytes");

      async function* stream() {
        yield Buffer.from("streamed ");
        yield Buffer.from("webp");
      }
      const streamed = await store.put(stream(), { mediaType: "image/webp" });
      expect(streamed.name).toMatch(/\.webp$/);
      expect(await text((await store.get(streamed.name))!.body)).toBe("streamed webp");

      await store.delete(image.name);
      expect(await store.head(image.name)).toBeUndefined();
      expect(await store.get(image.name)).toBeUndefined();
      expect(await store.get("0123456789abcdef0123456789abcdef.png")).toBeUndefined();
      expect(await store.get("../escape.png")).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("an expired image is gone, and the sweep deletes old objects of ours only", async () => {
    let now = Date.now();
    const store = new S3ImageStore({
      settings: settings({ prefix: "sweep/" }),
      ttlSeconds: 60,
      now: () => now,
    });
    try {
      const image = await store.put(Buffer.from("x"), { mediaType: "image/png" });
      await raw.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: "sweep/notes.txt", Body: "not an image" }),
      );
      now += 61_000;
      expect(await store.head(image.name)).toBeUndefined();
      expect(await store.get(image.name)).toBeUndefined();
      expect(await store.sweep()).toBe(1);
      expect(await keys("sweep/")).toEqual(["sweep/notes.txt"]);
    } finally {
      await store.close();
    }
  });

  it("presigned mode hands out S3 URLs that download the image until it expires", async () => {
    const store = new S3ImageStore({
      settings: settings({ prefix: "presigned/", presignedUrls: true }),
      ttlSeconds: 600,
    });
    const files = new ImageFiles({
      store,
      signer: new UrlSigner(),
      sweepIntervalMs: 60_000,
      logger: silentLogger,
    });
    try {
      const url = await files.publish(Buffer.from("presigned png"), "image/png");
      expect(url.startsWith(`${s3.endpoint}/${s3.bucket}/presigned/`)).toBe(true);
      expect(new URL(url).searchParams.get("X-Amz-Expires")).toMatch(/^(599|600)$/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/png");
      expect(await res.text()).toBe("presigned png");
    } finally {
      await files.close();
    }
  });

  it("a store that cannot reach S3 fails with a 503 naming the store", async () => {
    const store = new S3ImageStore({
      settings: settings({ endpoint: "http://127.0.0.1:9" }),
      ttlSeconds: 60,
    });
    try {
      await expect(store.put(Buffer.from("x"), { mediaType: "image/png" })).rejects.toMatchObject({
        code: "image_store_unavailable",
        httpStatus: 503,
      });
    } finally {
      await store.close();
    }
  });
});
