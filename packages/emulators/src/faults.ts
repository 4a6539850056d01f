/**
 * Provider-neutral fault injection for the upstream emulators. A test (or a benchmark, via an
 * emulator's control endpoint, `faultControl`) queues faults; the emulator takes one per
 * request before its normal handling and lets `playFault` play it out on the wire. Each
 * provider's builders (`openaiFaults`, …) spread `commonFaults` and add its own error shapes.
 */
import type http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { type AnyRequest, type AnyResponse, sendJson } from "./http-kit.ts";

export interface Fault {
  /** HTTP status to answer with; defaults to 200 when a `body` is given, else 500. */
  status?: number;
  /** Object → JSON; string → sent raw as text/plain (set a content-type header to change it). */
  body?: unknown;
  /** Extra response headers; they override the emulator's own. */
  headers?: Record<string, string>;
  /** Wait this long first. Alone, it only delays the normal response (latency). */
  delayMs?: number;
  /** Never answer; the exchange ends only when the client aborts (or the emulator closes). */
  hang?: boolean;
  /**
   * Kill the connection. `true`: TCP reset before any response byte (a connect-level failure).
   * `"after-headers"`: send the status line, headers and half the body, then reset (a failure
   * while reading the body).
   */
  reset?: boolean | "after-headers";
  /** How many matching requests it applies to; default 1; `Infinity` (JSON: "Infinity") is sticky. */
  times?: number;
  /** Apply only to requests whose JSON body has this `model`. */
  model?: string;
  /** Apply to each matching request with this chance (0-1); a request it spares passes it. */
  probability?: number;
}

export interface FaultContext {
  model?: string;
}

interface Pending {
  fault: Fault;
  remaining: number;
}

/** First-in, first-out; a fault filtered by model lets non-matching requests pass it. */
export class FaultQueue {
  #pending: Pending[] = [];
  #applied = 0;

  /** How many requests a fault has been applied to so far. */
  get applied(): number {
    return this.#applied;
  }

  push(fault: Fault): void {
    const times = fault.times ?? 1;
    if (!(times > 0)) throw new RangeError("fault.times must be > 0");
    this.#pending.push({ fault, remaining: times });
  }

  clear(): void {
    this.#pending = [];
  }

  /** Number of queued faults (sticky ones count once). */
  get size(): number {
    return this.#pending.length;
  }

  /** The fault for this request, if any; consumes one use of it. */
  take(ctx: FaultContext, random: () => number = Math.random): Fault | undefined {
    const i = this.#pending.findIndex(
      (p) =>
        (p.fault.model === undefined || p.fault.model === ctx.model) &&
        (p.fault.probability === undefined || random() < p.fault.probability),
    );
    const entry = this.#pending[i];
    if (!entry) return undefined;
    this.#applied += 1;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.#pending.splice(i, 1);
    return entry.fault;
  }
}

/** Builders for the faults any upstream can produce. Spread to add `times` or `model`. */
export const commonFaults = {
  /** Only delays the normal answer. */
  latency(delayMs: number): Fault {
    return { delayMs };
  },
  /** Never answers; the request ends only when the client aborts. */
  hang(): Fault {
    return { hang: true };
  },
  /** TCP reset before any response byte. */
  reset(): Fault {
    return { reset: true };
  },
  /** 200 headers and half of `body`, then a TCP reset. */
  resetMidBody(body: unknown): Fault {
    return { status: 200, body, reset: "after-headers" };
  },
  /** 200 with `truncated`, a JSON body cut short, labelled `contentType`. */
  malformed(truncated: string, contentType = "application/json"): Fault {
    return { status: 200, headers: { "content-type": contentType }, body: truncated };
  },
};

/**
 * Takes the fault queued for this request (matched on `model`), if any, and plays it out.
 * Returns the fault when it finished the exchange, undefined when the normal answer follows.
 */
export async function playFault(
  faults: FaultQueue,
  model: string | undefined,
  req: AnyRequest,
  res: AnyResponse,
): Promise<Fault | undefined> {
  const fault = faults.take({ model });
  // The HTTP/2 compatibility objects offer what applyFault uses (status, headers, end, socket).
  const finished =
    fault !== undefined &&
    (await applyFault(fault, res as http.ServerResponse, req as http.IncomingMessage));
  return finished ? fault : undefined;
}

/** How an emulator's control endpoint speaks: its own errors, limits and status codes. */
export interface ControlOptions {
  /** Reads the request body, with the emulator's size limit. */
  readBody(req: AnyRequest): Promise<Buffer>;
  /** The emulator's 400 for a fault that does not parse. */
  invalid(message: string): Error;
  /** Its error for a method other than GET, POST and DELETE; without it, such a method queues like POST. */
  badMethod?(method: string): Error;
  /** Sends the `{"pending": n}` answers; default application/json. */
  sendJson?: (res: AnyResponse, status: number, body: unknown) => void;
  /** Status answering DELETE (default 204) and a queued fault (default 201); 204 has no body, others `{"pending": n}`. */
  clearedStatus?: 200 | 204;
  queuedStatus?: 201 | 204;
}

/**
 * `/__emulator/faults`: POST a Fault (JSON) to queue it, DELETE to clear, GET to see how many
 * are pending. Errors are thrown, for the emulator to answer in its own shape.
 */
export async function faultControl(
  faults: FaultQueue,
  req: AnyRequest,
  res: AnyResponse,
  opts: ControlOptions,
): Promise<void> {
  const send = opts.sendJson ?? sendJson;
  const answer = (status: number): void => {
    if (status !== 204) {
      send(res, status, { pending: faults.size });
      return;
    }
    res.statusCode = 204;
    res.end();
  };
  const method = req.method ?? "GET";
  if (method === "DELETE") {
    faults.clear();
    return answer(opts.clearedStatus ?? 204);
  }
  if (method === "GET") return answer(200);
  if (method !== "POST" && opts.badMethod) throw opts.badMethod(method);
  let fault: Fault;
  try {
    const body = await opts.readBody(req);
    fault = parseFault(JSON.parse(body.toString("utf8")));
  } catch (err) {
    throw opts.invalid(`Invalid fault: ${err instanceof Error ? err.message : String(err)}`);
  }
  faults.push(fault);
  answer(opts.queuedStatus ?? 201);
}

/** Status used when a fault answers: the given one, else 200 for a bare body, else 500. */
function faultStatus(fault: Fault): number {
  return fault.status ?? (fault.body !== undefined ? 200 : 500);
}

/** Whether the fault produces its own answer (as opposed to only delaying the normal one). */
function answers(fault: Fault): boolean {
  return (
    fault.hang === true ||
    (fault.reset !== undefined && fault.reset !== false) ||
    fault.status !== undefined ||
    fault.body !== undefined ||
    fault.headers !== undefined
  );
}

/**
 * Plays `fault` out. Returns true when the exchange is finished (answered, reset, or the client
 * went away), false when the caller should continue with its normal response.
 * Headers already set on `res` (e.g. a request id) are kept unless the fault overrides them.
 */
export async function applyFault(
  fault: Fault,
  res: http.ServerResponse,
  req: http.IncomingMessage,
): Promise<boolean> {
  const closed = new AbortController();
  const onClose = (): void => closed.abort();
  res.once("close", onClose);
  try {
    if (fault.delayMs !== undefined && fault.delayMs > 0) {
      try {
        await sleep(fault.delayMs, undefined, { signal: closed.signal });
      } catch {
        return true; // the client gave up during the delay
      }
    }
    if (res.destroyed) return true;
    if (fault.hang) {
      await waitForClose(res, closed.signal);
      return true;
    }
    if (fault.reset === true) {
      req.socket.resetAndDestroy();
      return true;
    }
    if (!answers(fault)) return false;
    const { payload, contentType } = encodeBody(fault.body);
    res.statusCode = faultStatus(fault);
    res.setHeader("content-type", contentType);
    res.setHeader("content-length", payload.length);
    for (const [k, v] of Object.entries(fault.headers ?? {})) res.setHeader(k, v);
    if (fault.reset === "after-headers") {
      res.flushHeaders();
      res.write(payload.subarray(0, Math.floor(payload.length / 2)));
      // Give the headers and partial body a moment to reach the client before the RST.
      await sleep(20);
      req.socket.resetAndDestroy();
      return true;
    }
    res.end(payload);
    return true;
  } finally {
    res.off("close", onClose);
  }
}

function waitForClose(res: http.ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.destroyed) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

function encodeBody(body: unknown): { payload: Buffer; contentType: string } {
  if (body === undefined) return { payload: Buffer.alloc(0), contentType: "text/plain" };
  if (typeof body === "string") return { payload: Buffer.from(body), contentType: "text/plain" };
  return { payload: Buffer.from(JSON.stringify(body)), contentType: "application/json" };
}

/**
 * Validates a Fault received as JSON (control endpoints). `times: "Infinity"` (or null) means
 * sticky, since JSON has no Infinity. Throws an Error naming the bad field.
 */
export function parseFault(json: unknown): Fault {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error("fault must be a JSON object");
  }
  const src = json as Record<string, unknown>;
  const fault: Fault = {};
  for (const [key, value] of Object.entries(src)) {
    switch (key) {
      case "status":
        if (!Number.isInteger(value) || (value as number) < 100 || (value as number) > 599) {
          throw new Error("status must be an integer 100-599");
        }
        fault.status = value as number;
        break;
      case "body":
        fault.body = value;
        break;
      case "headers":
        fault.headers = parseHeaders(value);
        break;
      case "delayMs":
        if (typeof value !== "number" || !(value >= 0)) throw new Error("delayMs must be >= 0");
        fault.delayMs = value;
        break;
      case "hang":
        if (typeof value !== "boolean") throw new Error("hang must be a boolean");
        fault.hang = value;
        break;
      case "reset":
        if (typeof value !== "boolean" && value !== "after-headers") {
          throw new Error('reset must be a boolean or "after-headers"');
        }
        fault.reset = value;
        break;
      case "times":
        fault.times = parseTimes(value);
        break;
      case "model":
        if (typeof value !== "string") throw new Error("model must be a string");
        fault.model = value;
        break;
      case "probability":
        if (typeof value !== "number" || !(value >= 0 && value <= 1))
          throw new Error("probability must be 0-1");
        fault.probability = value;
        break;
      default:
        throw new Error(`unknown fault field: ${key}`);
    }
  }
  return fault;
}

function parseHeaders(value: unknown): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error("headers must be an object of strings");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw new Error(`headers.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

function parseTimes(value: unknown): number {
  if (value === null || value === "Infinity" || value === "infinity")
    return Number.POSITIVE_INFINITY;
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new Error('times must be a positive integer or "Infinity"');
  }
  return value as number;
}
