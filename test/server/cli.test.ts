/**
 * The `imagegate` command as a newcomer runs it: `dev` starts emulated providers and the
 * gateway (or, without the emulators package, says so in one line); SIGTERM drains
 * in-flight requests and exits 0; `serve` with a bad config stops with one clear message.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
});

function run(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const proc = spawn(process.execPath, [...nodeArgs, cli, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout.on("data", (d) => {
    output += d;
  });
  proc.stderr.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => resolve(code)),
  );
  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => {
    for (let i = 0; i < 200; i++) {
      const m = re.exec(output);
      if (m) return m;
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${re} in output:\n${output}`);
  };
  return { proc, exited, waitFor, output: () => output };
}

describe("imagegate dev", () => {
  it("serves emulated providers, then drains on SIGTERM and exits 0", async () => {
    const r = run(["dev", "--port", "0"]);
    child = r.proc;
    const [, gatewayUrl] = await r.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const [, emulatorUrl] = await r.waitFor(/openai\s+emulated at (http:\/\/\S+\/v1)/);
    await r.waitFor(/providers are emulated/);

    // Make the next upstream answer slow, so SIGTERM arrives while it is in flight.
    const fault = await fetch(`${emulatorUrl!.replace(/\/v1$/, "")}/__emulator/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ delayMs: 700 }),
    });
    expect(fault.status).toBe(201);
    const openai = new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: "x", maxRetries: 0 });
    const started = Date.now();
    const inflight = openai.images.generate({
      prompt: "a lighthouse at dusk",
      response_format: "b64_json",
    });
    await new Promise((r) => setTimeout(r, 250));
    r.proc.kill("SIGTERM");
    const res = await inflight;
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect(res.data?.[0]?.b64_json?.length).toBeGreaterThan(100);
    expect(await r.exited).toBe(0);
    expect(r.output()).toMatch(/SIGTERM: draining/);
  });

  it("without the emulators package, stops with one message saying what is missing", async () => {
    // As after `npm ci --workspaces=false`: @imagegate/emulators is looked up from an empty
    // folder (a module resolve hook), so Node's own resolution fails as on such an install.
    const empty = mkdtempSync(join(tmpdir(), "imagegate-no-emulators-"));
    const from = JSON.stringify(pathToFileURL(join(empty, "index.js")).href);
    const hook = `import { registerHooks } from "node:module";
registerHooks({
  resolve: (specifier, context, next) =>
    specifier.startsWith("@imagegate/emulators")
      ? next(specifier, { ...context, parentURL: ${from} })
      : next(specifier, context),
});`;
    const r = run(["dev", "--port", "0"], {}, [
      `--import=data:text/javascript,${encodeURIComponent(hook)}`,
    ]);
    child = r.proc;
    expect(await r.exited).toBe(1);
    expect(r.output()).toMatch(
      /^imagegate: dev needs the provider emulators, the workspace package @imagegate\/emulators .*run `npm ci` in a clone/,
    );
    expect(r.output().trim().split("\n")).toHaveLength(1);
    rmSync(empty, { recursive: true, force: true });
  });

  it("with the emulators package reached under node_modules, says it must be the link", async () => {
    // --preserve-symlinks keeps node_modules/@imagegate/emulators/… as the path, as a copy
    // there would: Node refuses to strip types under node_modules.
    const r = run(["dev", "--port", "0"], {}, ["--preserve-symlinks"]);
    child = r.proc;
    expect(await r.exited).toBe(1);
    expect(r.output()).toMatch(
      /^imagegate: dev needs @imagegate\/emulators to resolve to packages\/emulators .*under node_modules Node does not run TypeScript/,
    );
    expect(r.output().trim().split("\n")).toHaveLength(1);
  });
});

describe("imagegate serve", () => {
  it("stops at startup with one message naming the bad key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "imagegate-cli-"));
    const file = join(dir, "config.yaml");
    writeFileSync(
      file,
      "model_list:\n  - model_name: hq\n    params:\n      model: openai/dall-e-3\n      api_kye: sk-secret-value-123\n",
    );
    const r = run(["serve", "--config", file]);
    child = r.proc;
    expect(await r.exited).toBe(1);
    expect(r.output()).toMatch(/model_list\[0\]\.params: unknown key 'api_kye'/);
    expect(r.output()).not.toContain("sk-secret-value-123");
    expect(r.output().trim().split("\n")).toHaveLength(1);
  });

  it("requires --config", async () => {
    const r = run(["serve"]);
    child = r.proc;
    expect(await r.exited).toBe(1);
    expect(r.output()).toMatch(/serve needs --config FILE/);
  });
});
