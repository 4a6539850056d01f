/**
 * Large answers use pooled memory that goes back to the pool when a response closes (see
 * src/runtime/buffer-pool.ts). Here the pool overwrites memory the moment it is given back,
 * and many 1024x1024 images are fetched at once over every transport: if memory were given
 * back while a socket or an HTTP/2 session could still read it, some image would arrive
 * corrupted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BENCH_API_KEY,
  noisyPng,
  startBenchUpstreams,
  type BenchUpstreams,
} from "../../bench/emulator.ts";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { ALL_PROTOCOLS, createClients, ok } from "../support/protocols.ts";

let upstreams: BenchUpstreams;
let gateway: Gateway;
const png = noisyPng();

beforeAll(async () => {
  upstreams = await startBenchUpstreams(100);
  const yaml = `model_list:\n  - model_name: big\n    params:\n      model: openai/dall-e-2\n      api_key: ${BENCH_API_KEY}\n      api_base: ${upstreams.big}/v1\n`;
  const catalog = loadCatalog();
  const config = parseConfig(yaml, { HOST: "127.0.0.1", PORT: "0" }, catalog, "test");
  gateway = await startGateway({
    config,
    catalog,
    logger: silentLogger,
    bufferPool: { poison: true },
  });
});

afterAll(async () => {
  await gateway?.shutdown(1000);
  await upstreams?.close();
});

describe("pooled memory under concurrent large answers", () => {
  it("every image arrives intact over every protocol", async () => {
    const clients = createClients({ gateway, url: gateway.url });
    try {
      for (let round = 0; round < 3; round++) {
        const calls = ALL_PROTOCOLS.flatMap((protocol) =>
          [1, 2].map(() =>
            clients.call(protocol, { model: "big", prompt: "noise", response_format: "b64_json" }),
          ),
        );
        for (const outcome of await Promise.all(calls)) {
          const image = ok(outcome).response.data[0]!.b64Json!;
          expect(Buffer.compare(Buffer.from(image), png)).toBe(0);
        }
      }
    } finally {
      clients.close();
    }
  }, 60_000);
});
