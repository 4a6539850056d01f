/**
 * The gateway on the S3 backend (s3rver, a real S3-compatible server, in-process): bytes
 * stored in the bucket and served through the gateway's signed URLs, or handed out as
 * presigned S3 URLs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pngSize } from "@imagegate/emulators/png";
import { type LocalS3, s3StorageYaml, startS3 } from "../support/s3.ts";
import { createClients, ok } from "../support/protocols.ts";
import { type Stack, startStack } from "../support/stack.ts";

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.close();
});

async function withStack(yaml: string, run: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack({ yaml });
  try {
    await run(stack);
  } finally {
    await stack.close();
  }
}

describe("S3 backend", () => {
  it.each(["rest", "grpc"] as const)(
    "over %s: gateway URLs serve images stored in the bucket",
    async (protocol) => {
      const yaml = `general_settings:\n  url_signing_key: s3-e2e-signing-key-123456\n${s3StorageYaml(s3, { prefix: "gw/" })}`;
      await withStack(yaml, async (stack) => {
        const clients = createClients(stack);
        try {
          const { response } = ok(
            await clients.call(protocol, {
              model: "gpt-image-1",
              prompt: "an owl",
              size: "1024x1024",
              quality: "low",
              response_format: "url",
            }),
          );
          const url = response.data[0]!.url!;
          expect(url).toMatch(
            new RegExp(`^${stack.url}/v1/images/files/[0-9a-f]{32}\\.png\\?expires=\\d+&sig=`),
          );
          const res = await fetch(url);
          expect(res.status).toBe(200);
          expect(res.headers.get("content-type")).toBe("image/png");
          const bytes = Buffer.from(await res.arrayBuffer());
          expect(Number(res.headers.get("content-length"))).toBe(bytes.length);
          expect(pngSize(bytes)).toEqual({ width: 1024, height: 1024 });
          const etag = res.headers.get("etag")!;
          expect((await fetch(url, { headers: { "if-none-match": etag } })).status).toBe(304);
          const bad = new URL(url);
          bad.searchParams.set("sig", "A".repeat(43));
          expect((await fetch(bad)).status).toBe(403);
        } finally {
          clients.close();
        }
      });
    },
  );

  it("presigned mode: the URL is a presigned S3 URL that downloads the PNG", async () => {
    await withStack(
      s3StorageYaml(s3, { presigned: true, prefix: "presigned-gw/" }),
      async (stack) => {
        const clients = createClients(stack);
        try {
          const res = await clients.sdk.images.generate({
            model: "gpt-image-1",
            prompt: "an owl",
            size: "1024x1536",
            quality: "low",
            response_format: "url",
          });
          const url = res.data![0]!.url!;
          expect(url.startsWith(`${s3.endpoint}/${s3.bucket}/presigned-gw/`)).toBe(true);
          expect(new URL(url).searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
          const download = await fetch(url);
          expect(download.status).toBe(200);
          expect(pngSize(Buffer.from(await download.arrayBuffer()))).toEqual({
            width: 1024,
            height: 1536,
          });
        } finally {
          clients.close();
        }
      },
    );
  });
});
