/**
 * A 256 MiB upload to POST /v1/images/edits against the default `server.max_upload_bytes`
 * (64 MiB), measured in the gateway's own process: declared by its content-length it is a
 * 413 before any of it is read; sent chunked (no length) it is read as it streams and
 * refused once past the limit. Either way the gateway's memory stays far below the body.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayProcess, startGatewayProcess } from "../support/gateway-process.ts";

const MiB = 1024 * 1024;
const BODY_BYTES = 256 * MiB;
const BOUNDARY = "----imagegate-upload-memory";

let gateway: GatewayProcess;

beforeAll(async () => {
  gateway = await startGatewayProcess({
    yaml: "model_list:\n  - model_name: editor\n    params:\n      model: openai/gpt-image-1\n",
    env: { OPENAI_API_KEY: "sk-not-used", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" },
  });
}, 30_000);
afterAll(async () => {
  await gateway?.close();
});

const head = Buffer.from(
  `--${BOUNDARY}\r\ncontent-disposition: form-data; name="prompt"\r\n\r\nx\r\n` +
    `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="big.png"\r\n` +
    "content-type: image/png\r\n\r\n",
);

/**
 * Posts a multipart body of BODY_BYTES (one image part of repeated bytes, written from one
 * reused 1 MiB chunk, as fast as the gateway reads), chunked or with its length declared;
 * stops writing once the answer comes. Meanwhile samples the gateway's RSS.
 */
async function upload(
  declared: boolean,
): Promise<{ status: number; body: string; peakRss: number }> {
  const chunk = Buffer.alloc(MiB, 0x42);
  let peakRss = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakRss = Math.max(peakRss, (await gateway.memory()).rss);
    }
  })();
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${gateway.url}/v1/images/edits`, {
      method: "POST",
      headers: {
        "content-type": `multipart/form-data; boundary=${BOUNDARY}`,
        ...(declared ? { "content-length": String(BODY_BYTES) } : {}),
      },
    });
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    // The gateway may close the connection once it has answered: not the test's failure.
    req.on("error", (e) => {
      if (!answered) reject(e);
    });
    let sent = head.length;
    req.write(head);
    const pump = () => {
      while (!answered && sent < BODY_BYTES) {
        const n = Math.min(chunk.length, BODY_BYTES - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once("drain", pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
  sampling = false;
  await sampler;
  return { ...answer, peakRss };
}

describe("a 256 MiB upload over server.max_upload_bytes (64 MiB)", () => {
  for (const [name, declared] of [
    ["declared by content-length", true],
    ["chunked, without a length", false],
  ] as const) {
    it(`${name}: 413 request_too_large, the gateway's memory flat`, async () => {
      const before = (await gateway.memory()).rss;
      const { status, body, peakRss } = await upload(declared);
      expect(status).toBe(413);
      expect(JSON.parse(body)).toMatchObject({ error: { code: "request_too_large" } });
      const growth = peakRss - before;
      console.log(
        `upload-memory (${name}): RSS ${(before / MiB).toFixed(0)} MiB before, peak +${(growth / MiB).toFixed(1)} MiB`,
      );
      // Never the body: at most the 64 MiB the limit allows to be read, and change.
      expect(growth).toBeLessThan(96 * MiB);
    }, 60_000);
  }
});
