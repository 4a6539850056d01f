/**
 * Real PostgreSQL and Redis servers for tests, each started on a free loopback port in a
 * temp directory of its own and stopped after.
 *
 * PostgreSQL: Debian's binaries live under /usr/lib/postgresql/<version>/bin (not on PATH);
 * elsewhere `initdb`/`postgres` on PATH. PostgreSQL refuses to run as root, so as root the
 * server runs as the `postgres` system user (made by the Debian package) through `runuser`.
 * Trust authentication on loopback only, fsync off: a throwaway cluster.
 *
 * Missing binaries: `postgresBin()` / `redisBin()` answer undefined and print one line, so
 * a suite can `describe.skipIf(!postgresBin())`; with IMAGEGATE_REQUIRE_TEST_SERVICES=1
 * (set by .ci/run) a missing binary is an error instead (test-programs.ts: one rule for
 * every program the tests need).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, chmodSync, constants, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { hasTestProgram } from "./test-programs.ts";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The directory holding `postgres`, `initdb` and `pg_ctl` (Debian's newest version first), or undefined. */
export function postgresBin(): string | undefined {
  const debian = "/usr/lib/postgresql";
  try {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join(debian, v, "bin");
      if (executable(join(dir, "postgres")) && executable(join(dir, "initdb"))) return dir;
    }
  } catch {}
  // Elsewhere on PATH; else the one-line skip (or, when required, the error).
  return hasTestProgram("postgres") ? dirname(onPath("postgres")!) : undefined;
}

export function redisBin(): string | undefined {
  return hasTestProgram("redis-server") ? onPath("redis-server") : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface Service {
  /** `postgresql://…` or `redis://…` on 127.0.0.1. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (it can be started again with `start`), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port after `stop`. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

/** Runs a command as the postgres user when we are root (PostgreSQL refuses root). */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

export interface Postgres extends Service {
  /** The server's directory (cluster and socket), removed by close(). */
  readonly dataDir: string;
  /** A new empty database on this server; its URL. */
  createDatabase(name?: string): Promise<string>;
}

let databases = 0;

export async function startPostgres(bin = postgresBin()): Promise<Postgres> {
  if (bin === undefined) throw new Error("postgres is not installed");
  const dir = mkdtempSync(join(tmpdir(), "imagegate-pg-"));
  // The postgres user writes the cluster and its socket here.
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const [initCmd, initArgs] = asPostgres(join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
  ]);
  execFileSync(initCmd, initArgs, { stdio: "pipe", cwd: dir });
  const port = await freePort();
  const url = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = "";

  const start = async () => {
    const [cmd, args] = asPostgres(join(bin, "postgres"), [
      "-D",
      data,
      "-k",
      dir,
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
    ]);
    log = "";
    const proc = spawn(cmd, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stdout?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    proc.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    // Ready when a connection succeeds (bounded: 300 tries).
    for (let i = 0; i < 300; i++) {
      if (proc.exitCode !== null) throw new Error(`postgres exited: ${log.slice(-2000)}`);
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        return;
      } catch {
        await client.end().catch(() => {});
        await sleep(50);
      }
    }
    throw new Error(`postgres did not start: ${log.slice(-2000)}`);
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    // Fast shutdown through pg_ctl, which signals the postmaster itself (runuser may not pass signals on).
    const [cmd, args] = asPostgres(join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "fast", "-w"]);
    try {
      execFileSync(cmd, args, { stdio: "pipe", cwd: dir });
    } catch {
      proc.kill("SIGKILL");
    }
    await exited;
  };

  await start();
  return {
    url,
    port,
    dataDir: dir,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async createDatabase(name = `test_${process.pid}_${++databases}`) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return `postgresql://postgres@127.0.0.1:${port}/${name}`;
    },
  };
}

export async function startRedis(bin = redisBin()): Promise<Service> {
  if (bin === undefined) throw new Error("redis-server is not installed");
  const dir = mkdtempSync(join(tmpdir(), "imagegate-redis-"));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
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
    url,
    port,
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
