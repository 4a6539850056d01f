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
          .map(([k, v]) => `${escapeControl(k)}=${readableValue(v)}`)
          .join(" ");
        out(
          `${level === "info" ? "" : `${level.toUpperCase()} `}${escapeControl(msg)}${extra ? ` ${extra}` : ""}`,
        );
      } else {
        out(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
      }
    },
  };
}

/**
 * What could start a forged line or hide text on a terminal: control characters (C0, DEL,
 * C1), the Unicode line and paragraph separators, and bidirectional overrides.
 */
const UNSAFE = /[\p{Cc}\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** The text with every unsafe character written as an escape (`\n`, `\x1b`, `\u2028`), so one record stays one line. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    if (Object.hasOwn(NAMED, c)) return NAMED[c]!;
    const code = c.codePointAt(0)!;
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** A field's value in a readable line: quoted when it holds spaces, quotes or `=`, so it cannot pass for other fields. */
function readableValue(v: unknown): string {
  if (typeof v !== "string") return escapeControl(JSON.stringify(v) ?? String(v));
  return escapeControl(/[\s"=]/.test(v) ? JSON.stringify(v) : v);
}

export const silentLogger: Logger = { log() {} };
