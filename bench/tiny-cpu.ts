/**
 * CPU per tiny request added by the gateway, measured in one process (the load generator,
 * the gateway and the upstream emulator share it): the process's CPU time per request sent
 * through the gateway, minus the same sent straight to the emulator, alternating. Less
 * sensitive to a busy machine than wall-clock figures, it is for A/B-ing small changes;
 * `npm run bench` stays the measure of record.
 *
 *   node --max-semi-space-size=16 bench/tiny-cpu.ts [--requests 20000] [--rounds 4] [--connections 64] [--log json|none] > /dev/null
 *
 * On a machine shared with other work its rounds still vary by ±30 %: compare many.
 *
 * Prints one JSON line on stderr: µs of CPU per request, gateway minus direct, per round.
 */
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { loadCatalog } from "../src/catalog/catalog.ts";
import { parseConfig } from "../src/config/load.ts";
import { silentLogger } from "../src/log/logger.ts";
import { startGateway } from "../src/server/gateway.ts";
import { createTelemetry } from "../src/telemetry/telemetry.ts";
import { BENCH_API_KEY, startBenchUpstreams } from "./emulator.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "4" },
    connections: { type: "string", default: "64" },
    log: { type: "string", default: "json" },
  },
});
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const connections = Number(values.connections);

const up = await startBenchUpstreams(100);
const catalog = loadCatalog();
const yaml = `model_list:\n  - model_name: tiny\n    params:\n      model: openai/dall-e-2\n      api_key: ${BENCH_API_KEY}\n      api_base: ${up.tiny}/v1\n`;
const config = parseConfig(yaml, { HOST: "127.0.0.1", PORT: "0" }, catalog, "bench");
// As `imagegate serve` runs it: JSON request logs (to stdout; send them to /dev/null).
const telemetry = await createTelemetry({
  env: config.env,
  logFormat: values.log === "none" ? "none" : "json",
});
const gateway = await startGateway({ config, catalog, logger: silentLogger, telemetry });

const headers = { "content-type": "application/json", authorization: `Bearer ${BENCH_API_KEY}` };
const body = (model: string) =>
  JSON.stringify({ model, prompt: "a lighthouse", size: "256x256", response_format: "b64_json" });

async function run(origin: string, model: string, n: number): Promise<number> {
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const b = body(model);
  let left = n;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (left-- > 0) {
        const res = await pool.request({
          path: "/v1/images/generations",
          method: "POST",
          headers,
          body: b,
        });
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      }
    }),
  );
  const c = process.cpuUsage(c0);
  await pool.close();
  return (c.user + c.system) / n;
}

await run(gateway.url, "tiny", 2000);
await run(up.tiny, "dall-e-2", 2000);
const added: number[] = [];
for (let r = 0; r < rounds; r++) {
  const via = await run(gateway.url, "tiny", requests);
  const direct = await run(up.tiny, "dall-e-2", requests);
  added.push(Math.round(via - direct));
}
process.stderr.write(`${JSON.stringify({ connections, requests, addedCpuUsPerRequest: added })}\n`);
await gateway.shutdown(1000);
await telemetry.shutdown();
await up.close();
