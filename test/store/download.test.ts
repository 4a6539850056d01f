/**
 * The guarded download of provider image URLs: only allowed hosts, public addresses
 * unless an address is listed, redirects re-checked, size and time capped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderPng } from "@imagegate/emulators/png";
import { ImageDownloader } from "../../src/store/download.ts";
import { parseHostRule } from "../../src/store/host-policy.ts";
import { PROVIDER_IMAGE_HOSTS } from "../../src/providers/image-hosts.ts";
import type { DownloadSettings } from "../../src/store/settings.ts";
import { type ImageHost, redirectTo, sendImage, startImageHost } from "../support/image-servers.ts";

const PNG = renderPng(64, 48, "download-test");
const CAP = 100_000;

let good: ImageHost;
let trap: ImageHost;
let downloader: ImageDownloader;
const signal = new AbortController().signal;

function settings(extra: Partial<DownloadSettings> = {}): DownloadSettings {
  return { allowedHosts: [parseHostRule(good.origin)], maxBytes: CAP, timeoutMs: 2000, ...extra };
}

beforeAll(async () => {
  trap = await startImageHost("127.0.0.2", { "/x.png": sendImage(PNG) });
  good = await startImageHost("127.0.0.1", {
    "/img.png": sendImage(PNG),
    "/img.jpg": sendImage(PNG, "image/jpeg; charset=binary"),
    "/untyped": (_req, res) => {
      res.writeHead(200, { "content-length": PNG.length });
      res.end(PNG);
    },
    "/html": sendImage(Buffer.from("<html>login</html>"), "text/html"),
    "/to-trap": redirectTo(() => `${trap.origin}/x.png`),
    "/to-metadata": redirectTo("http://169.254.169.254/latest/meta-data/"),
    "/to-self": redirectTo("/img.png", 307),
    "/loop": redirectTo("/loop"),
    "/big": sendImage(Buffer.alloc(CAP + 1)),
    "/big-chunked": (_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      for (let i = 0; i < 30; i++) res.write(Buffer.alloc(10_000));
      res.end();
    },
    "/stall": (_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      res.write(Buffer.alloc(100)); // and never the rest
    },
    "/gone": (_req, res) => {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>AuthenticationFailed</Code></Error>");
    },
  });
  downloader = new ImageDownloader(settings());
});
afterAll(async () => {
  await downloader?.close();
  await good?.close();
  await trap?.close();
});

describe("ImageDownloader", () => {
  it("downloads from an allowed host, with the declared image type", async () => {
    const got = await downloader.fetch(`${good.origin}/img.png?sig=abc`, "openai", signal);
    expect(got.mediaType).toBe("image/png");
    expect(got.bytes.equals(PNG)).toBe(true);
    expect((await downloader.fetch(`${good.origin}/img.jpg`, "openai", signal)).mediaType).toBe(
      "image/jpeg",
    );
    expect(
      (await downloader.fetch(`${good.origin}/untyped`, "openai", signal)).mediaType,
    ).toBeUndefined();
  });

  it("never contacts a host that is not allowed", async () => {
    for (const url of [
      `${trap.origin}/x.png`,
      "http://169.254.169.254/latest/meta-data/",
      "file:///etc/passwd",
      "not a url",
    ]) {
      await expect(downloader.fetch(url, "openai", signal), url).rejects.toMatchObject({
        kind: "upstream",
        code: "image_url_refused",
      });
    }
    expect(trap.requests).toEqual([]);
  });

  it("follows a redirect only to where it may go anyway", async () => {
    expect(
      (await downloader.fetch(`${good.origin}/to-self`, "openai", signal)).bytes.equals(PNG),
    ).toBe(true);
    await expect(
      downloader.fetch(`${good.origin}/to-trap`, "openai", signal),
    ).rejects.toMatchObject({ code: "image_url_refused" });
    await expect(
      downloader.fetch(`${good.origin}/to-metadata`, "openai", signal),
    ).rejects.toMatchObject({ code: "image_url_refused" });
    expect(trap.requests).toEqual([]);
    await expect(downloader.fetch(`${good.origin}/loop`, "openai", signal)).rejects.toMatchObject({
      code: "image_download_failed",
    });
  });

  it("caps the size, declared or streamed", async () => {
    await expect(downloader.fetch(`${good.origin}/big`, "openai", signal)).rejects.toMatchObject({
      code: "image_too_large",
    });
    await expect(
      downloader.fetch(`${good.origin}/big-chunked`, "openai", signal),
    ).rejects.toMatchObject({ code: "image_too_large" });
  });

  it("caps the time", async () => {
    const quick = new ImageDownloader(settings({ timeoutMs: 200 }));
    try {
      await expect(quick.fetch(`${good.origin}/stall`, "openai", signal)).rejects.toMatchObject({
        kind: "timeout",
      });
    } finally {
      await quick.close();
    }
  });

  it("refuses non-image content and error answers", async () => {
    await expect(downloader.fetch(`${good.origin}/html`, "openai", signal)).rejects.toMatchObject({
      code: "image_download_failed",
      message: expect.stringMatching(/text\/html/),
    });
    await expect(
      downloader.fetch(`${good.origin}/gone?sig=secret`, "openai", signal),
    ).rejects.toMatchObject({
      code: "image_download_failed",
      message: expect.not.stringMatching(/secret/),
    });
  });

  it("refuses a host name that resolves to a non-public address, at connect time", async () => {
    const port = new URL(good.origin).port;
    const byName = new ImageDownloader(
      settings({ allowedHosts: [parseHostRule(`localhost:${port}`)] }),
    );
    const before = good.requests.length;
    try {
      await expect(
        byName.fetch(`http://localhost:${port}/img.png`, "openai", signal),
      ).rejects.toMatchObject({
        code: "image_url_refused",
        message: expect.stringMatching(/non-public address/),
      });
    } finally {
      await byName.close();
    }
    expect(good.requests.length).toBe(before);
  });

  it("a provider's own hosts are HTTPS names on public addresses", async () => {
    const withLocalProvider = new ImageDownloader(settings({ allowedHosts: [] }), {
      ...PROVIDER_IMAGE_HOSTS,
      recraft: ["localhost"],
    });
    try {
      await expect(
        withLocalProvider.fetch("http://localhost/x.png", "recraft", signal),
      ).rejects.toMatchObject({ code: "image_url_refused" });
      await expect(
        withLocalProvider.fetch("https://localhost/x.png", "recraft", signal),
      ).rejects.toMatchObject({
        message: expect.stringMatching(/non-public address/),
      });
      // Another provider's hosts are not this one's.
      await expect(
        withLocalProvider.fetch("https://img.recraft.ai/x.png", "openai", signal),
      ).rejects.toMatchObject({ code: "image_url_refused" });
    } finally {
      await withLocalProvider.close();
    }
  });

  it("a caller's abort stays an abort", async () => {
    const abort = new AbortController();
    const pending = downloader.fetch(`${good.origin}/stall`, "openai", abort.signal);
    setTimeout(() => abort.abort(new Error("client went away")), 50);
    await expect(pending).rejects.toThrow("client went away");
  });
});
