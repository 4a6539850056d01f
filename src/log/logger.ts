/**
 * A small structured logger: JSON lines on stderr, or readable lines in dev. Callers pass
 * facts, never secrets.
 */
export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(options: {
  pretty: boolean;
  out?: (line: string) => void;
  minLevel?: Level;
}): Logger {
  const order: Level[] = ["debug", "info", "warn", "error"];
  const min = order.indexOf(options.minLevel ?? "info");
  const out = options.out ?? ((line: string) => process.stderr.write(`${line}\n`));
  return {
    log(level, msg, fields = {}) {
      if (order.indexOf(level) < min) return;
      if (options.pretty) {
        const extra = Object.entries(fields)
          .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
          .join(" ");
        out(
          `${level === "info" ? "" : `${level.toUpperCase()} `}${msg}${extra ? ` ${extra}` : ""}`,
        );
      } else {
        out(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
      }
    },
  };
}

export const silentLogger: Logger = { log() {} };
