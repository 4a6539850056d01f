/**
 * The bench's upstream: three OpenAI emulators in one child process, each answering every
 * image call with one fixed 200 body through a sticky fault (so the upstream costs the same
 * for every system under test, and almost nothing):
 *
 * - `tiny`: a 1×1 PNG as b64_json;
 * - `big`: a 1024×1024 PNG of low-amplitude noise (≈1.45 MB, ≈1.9 MB of base64), built once
 *   here with pngjs; the emulator's own gradient compresses to a few kB, which is not what a
 *   real model returns;
 * - `slow`: the tiny body after a delay (`--slow-ms`, default 1000);
 * - `stream`: a GPT-image upstream (plain node:http, for scenarios (f) and (g)): a request
 *   with `stream: true` gets server-sent events, `partial_images` partial images then the
 *   completed image, each the `big` PNG; any other request the same image as one answer;
 *   an edit (`/images/edits`, multipart) has its body read and dropped, and that answer.
 *
 * Run as `node bench/emulator.ts [--slow-ms N]`: prints one JSON line
 * `{"tiny": url, "big": url, "slow": url, "bigPngBytes": n, "bigBodyBytes": n}` on stdout,
 * then serves until SIGTERM/SIGINT or until stdin closes (the parent went away).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { PNG } from "pngjs";
import type { Fault } from "@imagegate/emulators/faults";
import { type OpenAIEmulator, startOpenAIEmulator } from "@imagegate/emulators/openai";

export const BENCH_API_KEY = "sk-bench-emulator-key-0123456789";

/**
 * A PNG of about `bytes` that deflate cannot shrink: square RGB pixels of fixed-seed
 * xorshift noise (scenario (g)'s upload: what a photo to edit weighs, never compressible).
 */
export function uploadPng(bytes: number): Buffer {
  const side = Math.ceil(Math.sqrt(bytes / 3));
  const png = new PNG({ width: side, height: side });
  let s = 0x2545f491;
  for (let i = 0; i < side * side; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    png.data[i * 4] = s & 0xff;
    png.data[i * 4 + 1] = (s >>> 8) & 0xff;
    png.data[i * 4 + 2] = (s >>> 16) & 0xff;
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 });
}

/** A real 1×1 PNG. */
export function tinyPng(): Buffer {
  const png = new PNG({ width: 1, height: 1 });
  png.data.set([200, 120, 40, 255]);
  return PNG.sync.write(png, { colorType: 2 });
}

/**
 * A 1024×1024 RGB PNG that deflate cannot shrink much: a horizontal gradient plus 3 bits of
 * per-channel noise from a fixed-seed xorshift, so every run serves the same bytes.
 */
export function noisyPng(width = 1024, height = 1024): Buffer {
  const png = new PNG({ width, height });
  let s = 0x9e3779b9;
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      png.data[i * 4 + c] = (((i % width) >> 2) + ((s >>> 0) & 7)) & 0xff;
    }
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 });
}

/** The OpenAI response body for one b64_json image, serialised once. */
export function imagesBody(png: Buffer): string {
  return JSON.stringify({ created: 1_713_833_628, data: [{ b64_json: png.toString("base64") }] });
}

function fixedAnswer(body: string, delayMs?: number): Fault {
  return {
    status: 200,
    headers: { "content-type": "application/json" },
    // A string is sent as is: no JSON.stringify of 2 MB per request in the upstream.
    body,
    times: Number.POSITIVE_INFINITY,
    ...(delayMs !== undefined ? { delayMs } : {}),
  };
}

/** What a GPT-image upstream reports as used: the same in its events and its whole answers. */
const GPT_IMAGE_USAGE = {
  input_tokens: 10,
  input_tokens_details: { text_tokens: 10, image_tokens: 0 },
  output_tokens: 272,
  total_tokens: 282,
};
const GPT_IMAGE_ECHO = {
  size: "1024x1024",
  quality: "low",
  background: "opaque",
  output_format: "png",
};

/** One server-sent event of OpenAI's image stream carrying `b64`. */
export function imageEvent(type: string, b64: string, extra: object): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, b64_json: b64, created_at: 1, ...GPT_IMAGE_ECHO, ...extra })}\n\n`;
}

/** The events of one streamed request: `partials` partial images, then the completed image. */
export function imageStream(b64: string, partials: number): string[] {
  return [
    ...Array.from({ length: partials }, (_, i) =>
      imageEvent("image_generation.partial_image", b64, { partial_image_index: i }),
    ),
    imageEvent("image_generation.completed", b64, { usage: GPT_IMAGE_USAGE }),
  ];
}

/** The whole (non-streamed) GPT-image answer for `b64`. */
export function gptImageBody(b64: string): string {
  return JSON.stringify({
    created: 1,
    data: [{ b64_json: b64 }],
    ...GPT_IMAGE_ECHO,
    usage: GPT_IMAGE_USAGE,
  });
}

/**
 * A GPT-image upstream: `stream: true` gets the events of `imageStream` (`partial_images`
 * of them, at most 3), `delayMs` apart (0: as fast as the socket takes them); anything else
 * the whole answer at once. The events are built once per partial count.
 */
export async function startStreamUpstream(
  png: Buffer,
  delayMs = 0,
): Promise<{ url: string; close(): Promise<void> }> {
  const b64 = png.toString("base64");
  const whole = Buffer.from(gptImageBody(b64));
  const streams = [0, 1, 2, 3].map((n) => imageStream(b64, n).map((e) => Buffer.from(e)));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    if (req.url?.endsWith("/images/edits")) {
      // The upload is read (as an upstream must) but not kept: its cost is the gateway's.
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(whole));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      let body: { stream?: boolean; partial_images?: number };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString()) as typeof body;
      } catch {
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":{}}');
        return;
      }
      if (body.stream !== true) {
        res.writeHead(200, { "content-type": "application/json" }).end(whole);
        return;
      }
      const events = streams[Math.min(3, Math.max(0, body.partial_images ?? 0))]!;
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const e of events) {
        if (delayMs > 0) await sleep(delayMs);
        if (!res.write(e)) await new Promise((r) => res.once("drain", r));
      }
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export interface BenchUpstreams {
  tiny: string;
  big: string;
  slow: string;
  /** The GPT-image upstream of scenario (f) (`startStreamUpstream`). */
  stream: string;
  bigPngBytes: number;
  bigBodyBytes: number;
  close(): Promise<void>;
}

export async function startBenchUpstreams(slowMs = 1000): Promise<BenchUpstreams> {
  const tinyBody = imagesBody(tinyPng());
  const big = noisyPng();
  const bigBody = imagesBody(big);
  const emulators: OpenAIEmulator[] = [];
  const start = async (fault: Fault) => {
    const e = await startOpenAIEmulator({ apiKey: BENCH_API_KEY, host: "127.0.0.1", port: 0 });
    e.faults.push(fault);
    emulators.push(e);
    return e.baseUrl.replace(/\/v1$/, "");
  };
  const stream = await startStreamUpstream(big);
  return {
    tiny: await start(fixedAnswer(tinyBody)),
    big: await start(fixedAnswer(bigBody)),
    slow: await start(fixedAnswer(tinyBody, slowMs)),
    stream: stream.url,
    bigPngBytes: big.length,
    bigBodyBytes: Buffer.byteLength(bigBody),
    async close() {
      await Promise.all([...emulators.map((e) => e.close()), stream.close()]);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { "slow-ms": { type: "string" } } });
  const upstreams = await startBenchUpstreams(Number(values["slow-ms"] ?? 1000));
  const { close, ...info } = upstreams;
  process.stdout.write(`${JSON.stringify(info)}\n`);
  const stop = () => void close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.stdin.on("end", stop).resume();
}

if (import.meta.main) await main();
