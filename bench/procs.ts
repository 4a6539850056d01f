/**
 * Child processes of the bench (the emulator, each system under test) and what the kernel
 * says about them: resident memory (VmRSS) and CPU time (utime + stime) from /proc.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Set when the process ended without being asked to. */
  readonly crash: string | undefined;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

export interface SpawnOptions<T> {
  /** Returns the readiness info once a line shows the child is ready. */
  ready: (line: string) => T | undefined;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

const TAIL_LINES = 12;

/** Spawns `node ...args` and waits until `ready` recognises one of its output lines. */
export async function spawnNode<T>(
  name: string,
  args: string[],
  options: SpawnOptions<T>,
): Promise<{ child: Child; info: T }> {
  const proc = spawn(process.execPath, args, {
    stdio: ["pipe", "pipe", "pipe"],
    env: options.env ?? process.env,
  });
  let resolveReady: (info: T) => void = () => {};
  let rejectReady: (e: Error) => void = () => {};
  const ready = new Promise<T>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  let found = false;
  const child = watch(name, proc, {
    onLine(line) {
      if (found) return;
      const info = options.ready(line);
      if (info !== undefined) {
        found = true;
        resolveReady(info);
      }
    },
    onCrash: (crash) => rejectReady(new Error(`${crash}:\n${child.tail()}`)),
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  const timer = setTimeout(
    () => rejectReady(new Error(`${name} not ready after ${timeoutMs} ms:\n${child.tail()}`)),
    timeoutMs,
  );
  try {
    const info = await ready;
    return { child, info };
  } catch (e) {
    await child.stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** A child started with a given command whose readiness is checked from outside. */
export function spawnPlain(
  name: string,
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): { child: Child; proc: ChildProcess } {
  const proc = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
  return { child: watch(name, proc), proc };
}

/**
 * A spawned process as a Child: the last lines of its output (each also handed to `onLine`),
 * a crash (an exit or spawn error nobody asked for, also handed to `onCrash`), and `stop`.
 */
function watch(
  name: string,
  proc: ChildProcess,
  hooks: { onLine?: (line: string) => void; onCrash?: (crash: string) => void } = {},
): Child {
  const lines: string[] = [];
  let crash: string | undefined;
  let stopping = false;
  const crashed = (why: string) => {
    crash = why;
    hooks.onCrash?.(why);
  };
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (text: string) => {
      const parts = (partial + text).split(/\r?\n/);
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line.slice(0, 500));
        if (lines.length > TAIL_LINES) lines.shift();
        hooks.onLine?.(line);
      }
      // A spinner without newlines must not grow `partial` forever.
      if (partial.length > 64 * 1024) partial = partial.slice(-1024);
    });
  }
  const exited = new Promise<void>((resolve) => {
    proc.once("exit", (code, signal) => {
      if (!stopping) crashed(`${name} exited (code ${code}, signal ${signal})`);
      resolve();
    });
  });
  proc.once("error", (e) => crashed(`${name}: ${e.message}`));
  return {
    name,
    pid: proc.pid ?? -1,
    get crash() {
      return crash;
    },
    tail: () => lines.join("\n"),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
      stopping = true;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port that was free a moment ago (for children that cannot report the one they bound). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * Two adjacent clock-tick fields of `/proc/<pid>/stat` summed, in ms (`at`: the index
 * counted from the state field, field 3); undefined off Linux or once the process is gone.
 */
function statMs(pid: number | "self", at: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[at]) + Number(fields[at + 1])) * 1000) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU time (user + system: utime, stime) the process has used, in ms. */
export function cpuMs(pid: number): number | undefined {
  return statMs(pid, 11);
}

/**
 * CPU time of this process's children that have exited and been waited for (cutime +
 * cstime), ms: how a child that ran to its end (h2load) is counted.
 */
export function childrenCpuMs(): number | undefined {
  return statMs("self", 13);
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the RSS of some processes every `intervalMs` and keeps each one's peak. */
export class RssSampler {
  readonly #pids: readonly number[];
  readonly #peaks = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(pids: readonly number[], intervalMs = 25) {
    this.#pids = pids;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
    this.#timer.unref();
  }

  #sample(): void {
    for (const pid of this.#pids) {
      const rss = rssBytes(pid);
      if (rss !== undefined && rss > (this.#peaks.get(pid) ?? 0)) this.#peaks.set(pid, rss);
    }
  }

  /** Stops sampling; the peak RSS seen for each pid. */
  stop(): Map<number, number> {
    this.#sample();
    clearInterval(this.#timer);
    return this.#peaks;
  }
}

/**
 * Waits until the processes are (nearly) idle, so work left from the previous run (requests
 * cut off at a time limit, garbage collection) does not land in the next one's figures.
 */
export async function waitIdle(pids: readonly number[], maxMs = 3000): Promise<void> {
  const deadline = performance.now() + maxMs;
  let before = pids.map((p) => cpuMs(p) ?? 0);
  while (performance.now() < deadline) {
    await sleep(100);
    const now = pids.map((p) => cpuMs(p) ?? 0);
    const busy = now.some((v, i) => v - before[i]! > 10);
    before = now;
    if (!busy) return;
  }
}

/** CPU time all processes on the machine have used since boot (from /proc/stat), in ms. */
export function machineBusyMs(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return (busy * 1000) / ticksPerSecond();
  } catch {
    return undefined;
  }
}
