/**
 * The console's static route alone (src/server/console.ts), on a plain Node server: what a
 * build holds is served, nothing else is (no path from the URL reaches the disk), HEAD has
 * no body, and an unbuilt console says how to build it. The browser tests are in
 * test/console/.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, get, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONSOLE_CSP,
  type ConsoleFiles,
  isConsolePath,
  loadConsole,
  serveConsole,
} from "../../src/server/console.ts";
import type { NodeRequest, NodeResponse } from "../../src/server/universal.ts";

let dir: string;
const servers: Server[] = [];

async function serve(files: ConsoleFiles): Promise<string> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    if (!isConsolePath(path)) {
      res.writeHead(418).end();
      return;
    }
    void serveConsole(req as NodeRequest, res as NodeResponse, path, files);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A GET with the path exactly as written (fetch would resolve `..` before sending). */
function rawGet(
  base: string,
  path: string,
): Promise<{ status: number; csp: unknown; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    get({ hostname, port, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, csp: res.headers["content-security-policy"], body }),
      );
    }).on("error", reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagegate-console-"));
  await mkdir(join(dir, "built", "assets"), { recursive: true });
  await writeFile(join(dir, "built", "index.html"), "<!doctype html><title>t</title>");
  await writeFile(join(dir, "built", "assets", "main-ABCDEFGH.js"), "export {};");
  await writeFile(join(dir, "built", "assets", "notes.txt"), "not an asset type");
  await writeFile(join(dir, "secret.txt"), "outside the console");
});
afterAll(async () => {
  for (const s of servers) s.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the console's static route", () => {
  it("serves the built files, with their types and cache rules, and HEAD without a body", async () => {
    const url = await serve(loadConsole(`${join(dir, "built")}/`));
    const index = await fetch(`${url}/ui/`);
    expect(index.status).toBe(200);
    expect(await index.text()).toBe("<!doctype html><title>t</title>");
    expect(index.headers.get("content-security-policy")).toBe(CONSOLE_CSP);
    expect(index.headers.get("cache-control")).toBe("no-cache");

    const js = await fetch(`${url}/ui/assets/main-ABCDEFGH.js`);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await js.text()).toBe("export {};");

    const head = await fetch(`${url}/ui/assets/main-ABCDEFGH.js`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("10");
    expect(await head.text()).toBe("");
  });

  it("serves nothing else: other names, other types, paths that climb out", async () => {
    const url = await serve(loadConsole(`${join(dir, "built")}/`));
    for (const path of [
      "/ui/index.html",
      "/ui/assets/notes.txt",
      "/ui/assets/../../secret.txt",
      "/ui/assets/%2e%2e/%2e%2e/secret.txt",
      "/ui/assets/",
      "/ui/playground",
    ]) {
      const res = await rawGet(url, path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(res.csp).toBe(CONSOLE_CSP);
      expect(res.body).not.toContain("outside the console");
    }
    expect(isConsolePath("/uix")).toBe(false);
    expect(isConsolePath("/ui")).toBe(true);
  });

  it("says how to build the console when it is not built", async () => {
    const files = loadConsole(`${join(dir, "missing")}/`);
    expect(files.size).toBe(0);
    const url = await serve(files);
    const res = await fetch(`${url}/ui/`);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/not built: run `npm ci`/);
    const redirect = await fetch(`${url}/ui`, { redirect: "manual" });
    expect(redirect.status).toBe(308);
  });
});
