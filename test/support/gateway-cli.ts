/**
 * The gateway as an operator runs it: `node src/cli.ts serve --config FILE` in a process of
 * its own, on a free loopback port, ready once it says where it listens. Its output is kept
 * (one line per entry) for tests that count log lines; it can be killed with any signal.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

export interface CliGateway {
  readonly url: string;
  readonly pid: number;
  /** What it wrote so far (stdout and stderr), a line per entry. */
  readonly lines: string[];
  /** Sends `signal` and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startCliGateway(options: {
  configFile: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<CliGateway> {
  const proc: ChildProcess = spawn(
    process.execPath,
    [cli, "serve", "--config", options.configFile, "--host", "127.0.0.1", "--port", "0"],
    { env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  let partial = "";
  let listening: (url: string) => void = () => {};
  const url = new Promise<string>((resolve, reject) => {
    listening = resolve;
    proc.once("exit", (code, signal) =>
      reject(new Error(`gateway exited (${code ?? signal}):\n${lines.slice(-20).join("\n")}`)),
    );
    setTimeout(
      () => reject(new Error(`gateway not listening:\n${lines.slice(-20).join("\n")}`)),
      options.timeoutMs ?? 30_000,
    ).unref();
  });
  const onData = (d: Buffer) => {
    const parts = (partial + d.toString()).split("\n");
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      const m = /imagegate listening on (https?:\/\/[^\s"]+)/.exec(line);
      if (m) listening(m[1]!);
    }
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  try {
    return { url: await url, pid: proc.pid!, lines, kill };
  } catch (e) {
    await kill("SIGKILL");
    throw e;
  }
}
