/**
 * Starts test/support/gateway-child.ts: a gateway whose memory and open connections are
 * its own, measured in its process rather than in the test's (whose clients hold memory
 * and sockets of their own). Optionally under a lower open-file limit (`ulimit -n`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("./gateway-child.ts", import.meta.url));

export interface GatewayProcess {
  port: number;
  url: string;
  /** `process.memoryUsage()` in the gateway, after full collections. */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** Open client connections, as the gateway's listening server counts them. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export async function startGatewayProcess(options: {
  yaml: string;
  env?: Record<string, string>;
  openFiles?: number;
}): Promise<GatewayProcess> {
  const node = [process.execPath, "--expose-gc", script];
  const [command, args] =
    options.openFiles === undefined
      ? [node[0]!, node.slice(1)]
      : ["sh", ["-c", `ulimit -n ${options.openFiles} && exec "$0" "$@"`, ...node]];
  const child: ChildProcess = spawn(command, args, {
    env: {
      ...process.env,
      IMAGEGATE_CHILD_CONFIG: JSON.stringify({ yaml: options.yaml, env: options.env ?? {} }),
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`gateway process exited (${code})`)));
    child.on("message", (m: { port?: number; id?: number; value?: unknown }) => {
      if (m.port !== undefined) resolve(m.port);
      else if (m.id !== undefined) pending.get(m.id)?.(m.value);
    });
  });
  const ask = <T>(op: string) =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      pending.set(id, (v) => {
        pending.delete(id);
        resolve(v as T);
      });
      child.send({ id, op });
    });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    memory: () => ask<NodeJS.MemoryUsage>("memory"),
    connections: () => ask<number>("connections"),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}
