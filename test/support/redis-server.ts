/**
 * A real redis-server for tests: on a free loopback port, in a temp directory of its own,
 * without persistence (`--save '' --appendonly no`), stopped after. It can be stopped and
 * started again on the same port (an outage).
 *
 * Missing binary: `redisServerBin()` answers undefined and prints one line, so a suite can
 * `describe.skipIf(!redisServerBin())`; with IMAGEGATE_REQUIRE_TEST_SERVICES=1 (set by
 * .ci/run) a missing binary is an error instead.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export const REQUIRE_VARIABLE = "IMAGEGATE_REQUIRE_TEST_SERVICES";

/** The redis-server on PATH, or undefined (after one line saying so) unless it is required. */
export function redisServerBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, "redis-server"), constants.X_OK);
      return join(dir, "redis-server");
    } catch {}
  }
  if (env[REQUIRE_VARIABLE] === "1")
    throw new Error(`redis-server is not installed, and ${REQUIRE_VARIABLE}=1 requires it`);
  console.log("redis-server is not installed: skipping the tests that need it");
  return undefined;
}

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM); `start` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function startRedisServer(bin = redisServerBin()): Promise<RedisServer> {
  if (bin === undefined) throw new Error("redis-server is not installed");
  const dir = mkdtempSync(join(tmpdir(), "imagegate-redis-"));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async () => {
    let log = "";
    const proc = spawn(
      bin,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    child = proc;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d.toString();
        if (log.includes("Ready to accept connections")) resolve();
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", onData);
      proc.once("exit", () => reject(new Error(`redis-server exited: ${log.slice(-2000)}`)));
    });
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
