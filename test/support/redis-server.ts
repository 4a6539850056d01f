/**
 * A real redis-server for tests: on a free loopback port, in a temp directory of its own,
 * without persistence (`--save '' --appendonly no`), stopped after. It can be stopped and
 * started again on the same port (an outage).
 *
 * Missing binary: `redisServerBin()` answers undefined by test-programs.ts' one rule (a line
 * saying so; an error with IMAGEGATE_REQUIRE_TEST_SERVICES=1), so a suite can
 * `describe.skipIf(!redisServerBin())`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasTestProgram } from "./test-programs.ts";

/** The program to spawn (found on PATH), or undefined where it is missing. */
export function redisServerBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return hasTestProgram("redis-server", env) ? "redis-server" : undefined;
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
