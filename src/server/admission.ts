/**
 * At most `limit` image requests at once and `queue` waiting; past that, 429 with
 * Retry-After rather than unbounded memory. A slot is taken after the key check and before
 * the body is read, and held until the answer is written (or abandoned): what a request
 * holds in memory, from its body to its answer, is counted. A waiting client that leaves
 * gives up its place.
 */
import type { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { GatewayError } from "../errors/errors.ts";

export class Admission {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  private readonly queue: number;

  constructor(limit: number, queue: number) {
    this.limit = limit;
    this.queue = queue;
  }

  /**
   * Takes a slot: at once (undefined) when one is free, else once one frees up (the
   * promise). Waiting ends with `client`'s "close" (a response that closes).
   */
  acquire(client: EventEmitter): Promise<void> | undefined {
    if (this.active < this.limit) {
      this.active += 1;
      return undefined;
    }
    return this.wait(client);
  }

  private async wait(client: EventEmitter): Promise<void> {
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
        client.off("close", leave);
        resolve();
      };
      const leave = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new ConnectError("the client went away", Code.Canceled));
      };
      this.waiting.push(grant);
      client.once("close", leave);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the next waiter; `active` stays as it is.
    if (next) next();
    else this.active -= 1;
  }
}
