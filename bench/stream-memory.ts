/**
 * Peak memory of streams against whole answers (issue 15's memory item): the gateway's
 * peak RSS while it serves 64 concurrent streamed requests of a 1024x1024 image (3 partial
 * images, then the image, each ~1.9 MB of base64 in the upstream's events), against 64
 * concurrent ordinary requests of the same image. Each mode runs in a fresh gateway
 * process, with the same node flags as the benchmark, behind an upstream that answers both
 * with the bench's incompressible PNG (events 20 ms apart, so the streams overlap).
 *
 *   node bench/stream-memory.ts [--concurrency 64] [--rounds 3]
 *
 * Prints one JSON line: the peak RSS of each mode in MB.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { noisyPng, startStreamUpstream } from "./emulator.ts";
import { GATEWAY_NODE_FLAGS } from "./harness.ts";
import { RssSampler, spawnNode } from "./procs.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    partials: { type: "string", default: "3" },
  },
});
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const partialCount = Number(values.partials);

// The bench's GPT-image upstream, its events 20 ms apart so that the streams overlap.
const upstream = await startStreamUpstream(noisyPng(), 20);
const upstreamUrl = `${upstream.url}/v1`;

const tmp = mkdtempSync(path.join(tmpdir(), "imagegate-stream-memory-"));
const config = path.join(tmp, "imagegate.yaml");
writeFileSync(
  config,
  `model_list:\n  - model_name: gpt\n    params:\n      model: openai/gpt-image-1\n      api_key: sk-x\n      api_base: ${upstreamUrl}\nserver:\n  max_concurrent_requests: ${concurrency * 2}\n`,
);

async function measure(stream: boolean): Promise<number> {
  const { child, info: url } = await spawnNode(
    "imagegate",
    [
      ...GATEWAY_NODE_FLAGS,
      path.join(ROOT, "src/cli.ts"),
      "serve",
      "--config",
      config,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ],
    { ready: (line) => /listening on (https?:\/\/[^\s"]+)/.exec(line)?.[1] },
  );
  const sampler = new RssSampler([child.pid], 10);
  try {
    const request = { model: "gpt", prompt: "a lighthouse", size: "1024x1024", quality: "low" };
    const one = async () => {
      const res = await fetch(`${url}/v1/images/generations`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(
          stream ? { ...request, stream: true, partial_images: partialCount } : request,
        ),
      });
      if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
      // Read as a client does, chunk by chunk, without keeping the body.
      for await (const _ of res.body!) {
      }
    };
    for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: concurrency }, one));
    return sampler.stop().get(child.pid) ?? 0;
  } finally {
    await child.stop();
  }
}

const MB = 1024 * 1024;
const unary = await measure(false);
const streamed = await measure(true);
console.log(
  JSON.stringify({
    concurrency,
    rounds,
    partials: partialCount,
    peakRssMB: { unary: Math.round(unary / MB), stream: Math.round(streamed / MB) },
  }),
);
await upstream.close();
