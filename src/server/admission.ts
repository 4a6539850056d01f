/**
 * At most `limit` image requests at once and `queue` waiting; past that, 429 with
 * Retry-After rather than unbounded memory. A waiting client that leaves gives up its place.
 */
import type { Interceptor } from "@connectrpc/connect";
import { GatewayError } from "../errors/errors.ts";
import { OPEN_SERVICES } from "./open-services.ts";

export class Admission {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  private readonly queue: number;

  constructor(limit: number, queue: number) {
    this.limit = limit;
    this.queue = queue;
  }

  /** Takes a slot: at once (undefined) when one is free, else once one frees up (the promise). */
  acquire(signal: AbortSignal): Promise<void> | undefined {
    if (this.active < this.limit) {
      this.active += 1;
      return undefined;
    }
    return this.wait(signal);
  }

  private async wait(signal: AbortSignal): Promise<void> {
    if (this.waiting.length >= this.queue) {
      throw new GatewayError(
        "rate_limit",
        `The gateway is at capacity (${this.limit} requests in flight, ${this.queue} waiting). Try again shortly.`,
        {
          code: "gateway_overloaded",
          retryAfterSeconds: 1,
        },
      );
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener("abort", leave);
        resolve();
      };
      const leave = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
      };
      this.waiting.push(grant);
      signal.addEventListener("abort", leave, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter; `active` stays as it is.
    if (next) next();
    else this.active -= 1;
  }
}

export function admissionInterceptor(admission: Admission): Interceptor {
  return (next) => async (req) => {
    if (OPEN_SERVICES.has(req.service.typeName)) return next(req);
    // No await (and no promise) when a slot is free.
    const waiting = admission.acquire(req.signal);
    if (waiting !== undefined) await waiting;
    try {
      return await next(req);
    } finally {
      admission.release();
    }
  };
}
