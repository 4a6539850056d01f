/**
 * The gateway and a real PostgreSQL that goes away and comes back (contract: replicas,
 * faults): it starts with the database down, refuses budgeted keys with 503
 * `budget_unavailable` (REST and Connect alike) unless allow_requests_on_db_unavailable,
 * serves keys without a budget, says so once per outage and once per recovery, exports
 * `imagegate.database.up`, and once the database is back writes the journaled spend of every
 * answered request exactly: the sum of the cost headers.
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import parsePrometheus from "parse-prometheus-text-format";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type OpenAIEmulator, startOpenAIEmulator } from "@imagegate/emulators/openai";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { parseConfig } from "../../src/config/load.ts";
import { openPostgres } from "../../src/db/postgres.ts";
import { PostgresLedger } from "../../src/db/postgres-ledger.ts";
import { createLogger } from "../../src/log/logger.ts";
import { type Gateway, startGateway } from "../../src/server/gateway.ts";
import { type Postgres, postgresBin, startPostgres } from "../support/services.ts";
import { EMULATOR_KEY } from "../support/stack.ts";

const BUDGETED = "sk-budgeted-outage-0123456789";
const FREE = "sk-free-outage-0123456789";
const sha = (k: string) => createHash("sha256").update(k).digest("hex");
const catalog = loadCatalog();

let server: Postgres;
let openai: OpenAIEmulator;
const gateways: Gateway[] = [];

afterEach(async () => {
  for (const g of gateways.splice(0)) await g.shutdown(1000);
});

function yaml(url: string, journal: string, extra = ""): string {
  return `general_settings:
  database_url: ${url}
  spend_journal_dir: ${journal}
${extra}keys:
  - key: ${BUDGETED}
    name: budgeted
    max_budget: 10
  - key: ${FREE}
    name: free
model_list:
  - model_name: cheap
    params:
      model: openai/dall-e-2
      api_key: ${EMULATOR_KEY}
      api_base: ${openai.baseUrl}
`;
}

async function start(text: string): Promise<{ gateway: Gateway; lines: string[] }> {
  const lines: string[] = [];
  const config = parseConfig(text, { HOST: "127.0.0.1", PORT: "0" }, catalog, "test");
  const gateway = await startGateway({
    config,
    catalog,
    logger: createLogger({ pretty: true, out: (line) => lines.push(line) }),
  });
  gateways.push(gateway);
  return { gateway, lines };
}

async function generate(g: Gateway, key: string) {
  const res = await fetch(`${g.url}/v1/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: "a fox", model: "cheap", size: "256x256" }),
  });
  const json = (await res.json()) as { error?: { code?: string; type?: string } };
  const cost = res.headers.get("x-imagegate-cost-usd");
  return {
    status: res.status,
    error: json.error,
    retryAfter: res.headers.get("retry-after"),
    cost: cost === null ? 0 : Number(cost),
  };
}

async function databaseUp(g: Gateway): Promise<number | undefined> {
  const families = parsePrometheus(await (await fetch(`${g.url}/metrics`)).text());
  const m = families.find((f) => f.name === "imagegate_database_up")?.metrics[0];
  return m === undefined ? undefined : Number(m.value);
}

/** Polls (bounded, no time asserted) until `check` holds. */
async function eventually(check: () => Promise<boolean> | boolean, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

async function spentIn(url: string, key: string): Promise<number> {
  const database = await openPostgres(url);
  const ledger = new PostgresLedger(database);
  try {
    return await ledger.spent(sha(key));
  } finally {
    await ledger.close();
    await database.close();
  }
}

const sum = (xs: { cost: number }[]) => xs.reduce((n, x) => n + x.cost, 0);

describe.skipIf(!postgresBin())("PostgreSQL down and back", () => {
  beforeAll(async () => {
    server = await startPostgres();
    openai = await startOpenAIEmulator({ apiKey: EMULATOR_KEY, host: "127.0.0.1", port: 0 });
  }, 60_000);
  afterAll(async () => {
    await openai?.close();
    await server?.close();
  });

  it("starts without it, refuses budgeted keys with 503 budget_unavailable, serves the others, and catches up", async () => {
    const url = await server.createDatabase();
    const journal = mkdtempSync(join(tmpdir(), "imagegate-journal-"));
    await server.stop();
    let stopped = true;
    try {
      const { gateway, lines } = await start(yaml(url, journal));
      expect(await databaseUp(gateway)).toBe(0);

      const refused = await generate(gateway, BUDGETED);
      expect(refused).toMatchObject({
        status: 503,
        error: { code: "budget_unavailable", type: "server_error" },
        retryAfter: "1",
      });
      // Connect (as gRPC): UNAVAILABLE with the same ErrorInfo reason.
      const rpc = await fetch(`${gateway.url}/imagegate.v1.ImageService/CreateImage`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "connect-protocol-version": "1",
          authorization: `Bearer ${BUDGETED}`,
        },
        body: JSON.stringify({ prompt: "a fox", model: "cheap", size: "256x256" }),
      });
      const rpcError = (await rpc.json()) as { code: string; details?: { debug?: unknown }[] };
      expect(rpc.status).toBe(503);
      expect(rpcError.code).toBe("unavailable");
      expect(JSON.stringify(rpcError.details)).toContain("budget_unavailable");

      const free = await Promise.all(Array.from({ length: 6 }, () => generate(gateway, FREE)));
      expect(free.map((a) => a.status)).toEqual(Array(6).fill(200));
      expect(readdirSync(journal).length).toBeGreaterThan(0);

      await server.start();
      stopped = false;
      expect(await eventually(async () => (await databaseUp(gateway)) === 1)).toBe(true);
      expect(await eventually(() => readdirSync(journal).length === 0)).toBe(true);
      const served = await generate(gateway, BUDGETED);
      expect(served.status).toBe(200);
      await gateway.shutdown(1000);
      expect(await spentIn(url, FREE)).toBeCloseTo(sum(free), 10);
      expect(await spentIn(url, BUDGETED)).toBeCloseTo(served.cost, 10);
      // One line for the outage (whatever the probes, refusals and failed writes) and one back.
      expect(lines.filter((l) => l.includes("is unreachable"))).toHaveLength(1);
      expect(lines.filter((l) => l.includes("is reachable again"))).toHaveLength(1);
    } finally {
      if (stopped) await server.start();
    }
  });

  it("takes a database that stops answering (a partition) for an outage, and comes back", async () => {
    const url = await server.createDatabase();
    const proxy = await partitionableProxy(server.port);
    try {
      const journal = mkdtempSync(join(tmpdir(), "imagegate-journal-"));
      const proxied = url.replace(`:${server.port}/`, `:${proxy.port}/`);
      const { gateway, lines } = await start(yaml(proxied, journal));
      expect((await generate(gateway, BUDGETED)).status).toBe(200);
      proxy.partition();
      // Nothing is refused or closed: queries go unanswered until the query timeout (5 s).
      expect(await eventually(async () => (await databaseUp(gateway)) === 0, 400)).toBe(true);
      expect(await generate(gateway, BUDGETED)).toMatchObject({
        status: 503,
        error: { code: "budget_unavailable" },
      });
      const free = await generate(gateway, FREE);
      expect(free.status).toBe(200);
      proxy.heal();
      expect(await eventually(async () => (await databaseUp(gateway)) === 1, 400)).toBe(true);
      expect(await eventually(() => readdirSync(journal).length === 0)).toBe(true);
      await gateway.shutdown(1000);
      expect(await spentIn(url, FREE)).toBeCloseTo(free.cost, 10);
      expect(lines.filter((l) => l.includes("is unreachable"))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("with allow_requests_on_db_unavailable serves budgeted keys through an outage; spend exact after", async () => {
    const url = await server.createDatabase();
    const journal = mkdtempSync(join(tmpdir(), "imagegate-journal-"));
    const { gateway, lines } = await start(
      yaml(url, journal, "  allow_requests_on_db_unavailable: true\n"),
    );
    expect(await databaseUp(gateway)).toBe(1);
    const before = await Promise.all(Array.from({ length: 5 }, () => generate(gateway, BUDGETED)));
    expect(before.map((a) => a.status)).toEqual(Array(5).fill(200));

    await server.stop();
    let during: Awaited<ReturnType<typeof generate>>[] = [];
    try {
      // Requests racing the outage's discovery and after it: every one answered.
      during = await Promise.all(
        Array.from({ length: 10 }, (_, i) => generate(gateway, i % 2 ? BUDGETED : FREE)),
      );
      expect(during.map((a) => a.status)).toEqual(Array(10).fill(200));
      expect(await eventually(async () => (await databaseUp(gateway)) === 0)).toBe(true);
    } finally {
      await server.start();
    }
    expect(await eventually(async () => (await databaseUp(gateway)) === 1)).toBe(true);
    expect(await eventually(() => readdirSync(journal).length === 0)).toBe(true);
    await gateway.shutdown(1000);
    const budgeted = [...before, ...during.filter((_, i) => i % 2)];
    expect(await spentIn(url, BUDGETED)).toBeCloseTo(sum(budgeted), 10);
    expect(await spentIn(url, FREE)).toBeCloseTo(sum(during.filter((_, i) => !(i % 2))), 10);
    expect(lines.filter((l) => l.includes("is unreachable"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("is reachable again"))).toHaveLength(1);
  });
});

/**
 * A TCP proxy to PostgreSQL that can stop forwarding without closing anything, as a network
 * partition does, and heal (cutting the stalled connections, as the network's timeouts
 * would eventually).
 */
async function partitionableProxy(target: number) {
  const pairs: net.Socket[][] = [];
  let cut = false;
  const proxy = net.createServer((client) => {
    if (cut) {
      pairs.push([client]);
      return;
    }
    const upstream = net.connect(target, "127.0.0.1");
    client.on("data", (d) => cut || upstream.write(d));
    upstream.on("data", (d) => cut || client.write(d));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    partition() {
      cut = true;
    },
    heal() {
      cut = false;
      for (const p of pairs.splice(0)) for (const s of p) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs.splice(0)) for (const s of p) s.destroy();
        proxy.close(() => resolve());
      }),
  };
}

describe("the spend journal's directory", () => {
  it("stops startup with one message naming spend_journal_dir when it cannot be made", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "imagegate-journal-")), "a-file");
    writeFileSync(file, "");
    const config = parseConfig(
      `general_settings:\n  database_url: postgresql://nobody@127.0.0.1:1/nothing\n  spend_journal_dir: ${file}/journal\nmodel_list: []\n`,
      { HOST: "127.0.0.1", PORT: "0" },
      catalog,
      "test",
    );
    await expect(
      startGateway({ config, catalog, logger: createLogger({ pretty: true, out: () => {} }) }),
    ).rejects.toThrow(
      /spend journal's directory .*a-file\/journal cannot be used \(ENOTDIR\); name a writable one with general_settings\.spend_journal_dir/,
    );
  });
});
