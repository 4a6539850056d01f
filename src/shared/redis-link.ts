/**
 * The link to the Redis that replicas share (contract: "Replicas share state (Redis)").
 *
 * Invariants:
 * - `up` is true only while the command connection is ready. Callers look at it before
 *   sending anything and use their own local state when it is false: no request waits for
 *   a Redis that is not there (no offline queue; a command in flight when the connection
 *   drops fails at once instead of being resent later).
 * - One warning when Redis becomes unreachable (at start or later) and one line when it is
 *   back, however many reconnection attempts lie between: ioredis reports every failed
 *   attempt as an `error` event, which would flood the log during an outage.
 * - It reconnects by itself (ioredis' retry strategy, capped at one attempt a second).
 * - The URL's password never reaches a log line: logs name `host:port/db` only.
 */
import { randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../log/logger.ts";

export interface RedisLinkOptions {
  url: string;
  logger: Logger;
  /** How long one command may take before the caller falls back to local state. */
  commandTimeoutMs?: number;
}

/** Most a command may take; past it the caller decides on its own state (no failed request). */
const COMMAND_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 2000;
/** How long `ready()` waits at start for the first connection before serving on local state. */
const FIRST_CONNECT_WAIT_MS = 2000;

export class RedisLink {
  /** Commands and scripts. */
  readonly client: Redis;
  /** Names this replica in shared figures (its in-flight counts). */
  readonly replicaId = randomBytes(8).toString("hex");
  /** `host:port/db`, for log lines. */
  readonly where: string;
  readonly #logger: Logger;
  #up = false;
  /** Whether the last line logged said Redis was unreachable. */
  #downReported = false;
  #closed = false;
  readonly #onUp: (() => void)[] = [];
  readonly #onDown: (() => void)[] = [];
  readonly #subscribers: Redis[] = [];
  readonly #settled: Promise<void>;

  constructor(options: RedisLinkOptions) {
    this.#logger = options.logger;
    this.where = describeRedisUrl(options.url);
    this.client = new Redis(options.url, {
      ...clientOptions(),
      commandTimeout: options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
    });
    let settle!: () => void;
    this.#settled = new Promise((resolve) => {
      settle = resolve;
    });
    this.client.on("ready", () => {
      settle();
      this.#up = true;
      if (this.#downReported) {
        this.#downReported = false;
        this.#logger.log(
          "info",
          `shared state: Redis at ${this.where} is reachable again; replicas share limits, cooldowns and routing figures again`,
        );
      }
      for (const fn of this.#onUp) fn();
    });
    const down = (reason: unknown) => {
      settle();
      const wasUp = this.#up;
      this.#up = false;
      if (this.#closed) return;
      if (!this.#downReported) {
        this.#downReported = true;
        this.#logger.log(
          "warn",
          `shared state: Redis at ${this.where} is unreachable (${describeError(reason)}); this replica serves on its own state and reconnects by itself`,
        );
      }
      if (wasUp) for (const fn of this.#onDown) fn();
    };
    this.client.on("error", down);
    this.client.on("close", () => down("connection closed"));
  }

  get up(): boolean {
    return this.#up;
  }

  onUp(fn: () => void): void {
    this.#onUp.push(fn);
  }

  onDown(fn: () => void): void {
    this.#onDown.push(fn);
  }

  /** Resolves once the first connection succeeded or failed, or after a short wait. */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#settled,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, FIRST_CONNECT_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** A connection for pub/sub (a subscribed connection can do nothing else); resubscribes after reconnects. */
  subscriber(): Redis {
    // Subscriptions may wait for the connection: they carry no request.
    const sub = this.client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    sub.on("error", () => {}); // the command connection reports outages
    this.#subscribers.push(sub);
    return sub;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    for (const c of [this.client, ...this.#subscribers]) c.disconnect();
  }
}

function clientOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
  };
}

/** `host:port/db` of a redis:// URL, without user or password. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, "") || "0";
    return `${u.hostname}:${u.port || "6379"}/${db}`;
  } catch {
    return "(invalid URL)";
  }
}

function describeError(e: unknown): string {
  if (typeof e === "string") return e;
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err?.code === "string") return err.code;
  return typeof err?.message === "string" ? err.message.split("\n")[0]! : "error";
}
