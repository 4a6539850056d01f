/**
 * The upstream SSE reader (providers/sse.ts) against a server that cuts its events at
 * every awkward place: fields split across chunks, CRLF split between chunks, comments and
 * unknown fields, multi-line data, and a last event cut off before its blank line (dropped).
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamUpstream } from "../../src/providers/sse.ts";

let server: http.Server;
let url: string;
let pieces: string[] = [];

beforeAll(async () => {
  server = http.createServer(async (_req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const piece of pieces) {
      res.write(piece);
      await new Promise((r) => setTimeout(r, 2));
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function read(given: string[]): Promise<Array<{ event?: string; data: string }>> {
  pieces = given;
  const res = await streamUpstream(url, {
    method: "POST",
    headers: {},
    body: "{}",
    signal: new AbortController().signal,
    timeoutMs: 5000,
  });
  if (!res.stream) throw new Error("not a stream");
  const out: Array<{ event?: string; data: string }> = [];
  for await (const e of res.events)
    out.push({ ...(e.event ? { event: e.event } : {}), data: Buffer.concat(e.data).toString() });
  return out;
}

describe("streamUpstream", () => {
  it("reads events whose lines are cut anywhere, with CRLF, comments and multi-line data", async () => {
    const text =
      ': a comment\r\nevent: image_generation.partial_image\r\ndata: {"a":1}\r\n\r\nid: 7\nevent: x\ndata: line one\ndata:line two\n\nevent: image_generation.completed\ndata: {"b":2}\n\nevent: cut\ndata: {"never": "ended';
    // Every split point: each event is read the same whatever the chunks.
    for (let cut = 1; cut < text.length; cut += 7) {
      const got = await read([text.slice(0, cut), text.slice(cut)]);
      expect(got, `cut at ${cut}`).toEqual([
        { event: "image_generation.partial_image", data: '{"a":1}' },
        { event: "x", data: "line one\nline two" },
        { event: "image_generation.completed", data: '{"b":2}' },
      ]);
    }
  });

  it("reads a large data line arriving in many small chunks", async () => {
    const big = "A".repeat(200_000);
    const frame = `event: e\ndata: {"b64_json":"${big}"}\n\n`;
    const chunks: string[] = [];
    for (let i = 0; i < frame.length; i += 9973) chunks.push(frame.slice(i, i + 9973));
    const got = await read(chunks);
    expect(got).toHaveLength(1);
    expect(got[0]!.data).toBe(`{"b64_json":"${big}"}`);
  });
});
