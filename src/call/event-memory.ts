/**
 * Pooled memory for the events of a REST stream, given back event by event: a stream's
 * images (partial ones too) and their JSON are written one event at a time, so once an
 * event has been handed to the socket, the memory that held it can hold the next one. Only
 * REST knows when that is (gRPC and Connect serialize inside connect-es): elsewhere a
 * stream's images are plain allocations.
 */
import { createContextKey } from "@connectrpc/connect";
import type { BufferLease } from "../runtime/buffer-pool.ts";

export class EventMemory {
  readonly #request: BufferLease;
  #event: BufferLease;

  constructor(request: BufferLease) {
    this.#request = request;
    this.#event = request.child();
  }

  /** Memory for the event being made. */
  readonly allocate = (size: number): Buffer => this.#event.allocate(size);

  /** The event has left: its memory is given back, the next event gets its own. */
  written(): void {
    const old = this.#event;
    this.#event = this.#request.child();
    old.release();
  }

  /** The stream is over (nothing it allocated can be read any more). */
  end(): void {
    this.#event.release();
  }
}

/** Set by REST on a streaming call: where a streaming upstream's images are decoded. */
export const kEventMemory = createContextKey<EventMemory | undefined>(undefined, {
  description: "imagegate event memory",
});
