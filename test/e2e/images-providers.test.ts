/**
 * `response_format` is honoured for every provider (contract): for one model of each
 * provider family in the catalog, both formats through the OpenAI SDK and grpc-js, with
 * every provider emulated exactly as `npm run dev` wires them (including its image store
 * and its allowance for the emulators' loopback image hosts). With `rehost_urls`, even
 * providers that answer URLs are served from the gateway's own store.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCatalog, type ModelSpec } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { type DevProviders, startDevProviders } from "../../src/dev/dev.ts";
import { silentLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { type Clients, createClients, ok } from "../support/protocols.ts";
import type { Stack } from "../support/stack.ts";

const catalog = loadCatalog();

/** One model per provider and family (and Recraft's vector output, which is SVG). */
function representatives(): ModelSpec[] {
  const seen = new Set<string>();
  return catalog.entries().filter((spec) => {
    const key = `${spec.provider}/${spec.family}${spec.model.endsWith("_vector") ? "/vector" : ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const MODELS = representatives().map((spec) => ({ name: `${spec.provider}/${spec.model}`, spec }));
const FILES_URL =
  /^http:\/\/127\.0\.0\.1:\d+\/v1\/images\/files\/[0-9a-f]{32}\.[a-z]+\?expires=\d+&sig=[A-Za-z0-9_-]{43}$/;

interface DevGateway {
  gateway: Gateway;
  clients: Clients;
}

let providers: DevProviders;
const gateways: DevGateway[] = [];

async function devGateway(extraGeneral: string): Promise<DevGateway> {
  // The dev config as `npm run dev` builds it, plus one general setting spliced into its section.
  const yaml = providers.configYaml.replace(
    "general_settings:\n",
    `general_settings:\n${extraGeneral}`,
  );
  const config = parseConfig(
    yaml,
    { ...providers.env, HOST: "127.0.0.1", PORT: "0" },
    catalog,
    "dev",
  );
  const gateway = await startGateway({
    config,
    catalog,
    logger: silentLogger,
    bufferPool: { poison: true, minPooledBytes: 1 },
  });
  const clients = createClients({ gateway, url: gateway.url } as Stack);
  const g = { gateway, clients };
  gateways.push(g);
  return g;
}

beforeAll(async () => {
  providers = await startDevProviders();
}, 30_000);
afterAll(async () => {
  for (const g of gateways) {
    g.clients.close();
    await g.gateway.shutdown(1000);
  }
  await providers?.close();
});

describe.each([false, true])("rehost_urls: %s", (rehost) => {
  let dev: DevGateway;
  beforeAll(async () => {
    dev = await devGateway(`  rehost_urls: ${rehost}\n`);
  });

  describe.each(["rest", "grpc"] as const)("over %s", (protocol) => {
    it.each(MODELS)("$name answers b64_json", async ({ name }) => {
      const { response } = ok(
        await dev.clients.call(protocol, {
          model: name,
          prompt: "a red fox",
          response_format: "b64_json",
        }),
      );
      expect(response.data.length).toBeGreaterThan(0);
      for (const image of response.data) {
        expect(image.url).toBeUndefined();
        expect(image.b64Json?.length).toBeGreaterThan(0);
      }
    });

    it.each(MODELS)("$name answers url, and the URL serves the image", async ({ name, spec }) => {
      const { response } = ok(
        await dev.clients.call(protocol, {
          model: name,
          prompt: "a red fox",
          response_format: "url",
        }),
      );
      expect(response.data.length).toBeGreaterThan(0);
      for (const image of response.data) {
        expect(image.b64Json).toBeUndefined();
        const url = image.url!;
        // Bytes are always stored by the gateway; a provider's URL only with rehost_urls.
        if (spec.native_response === "b64_json" || rehost) {
          expect(url).toMatch(FILES_URL);
          expect(url.startsWith(dev.gateway.url)).toBe(true);
        } else {
          expect(url.startsWith(dev.gateway.url)).toBe(false);
        }
        const res = await fetch(url);
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/^image\//);
        expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
      }
    });
  });
});
