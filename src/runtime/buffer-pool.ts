/**
 * Reused memory for the large buffers a request holds only while it is answered: decoded
 * images and REST answers, 1–3 MB each for a 1024x1024 image.
 *
 * Why: V8 starts a full mark-compact of the whole heap each time about 64 MB of new
 * ArrayBuffer memory has been allocated, and a short-lived buffer is freed only by such a
 * collection. At a few fresh megabytes per request those collections were most of the
 * gateway's CPU (bench/PROFILE.md). Memory taken from here is not new to V8.
 *
 * Ownership is per request: a `BufferLease` hands out buffers and gives all of them back at
 * once when the request's answer has been written (the response's `close`). After that the
 * lease hands out plain buffers, so work that outlives its request (an attempt abandoned by
 * a fallback, say) never touches memory that another request now uses.
 */

/** Gives a Buffer of exactly `size` bytes, uninitialised. */
export type Allocate = (size: number) => Buffer;

export interface BufferPoolOptions {
  /** Requests below this size are plain allocations: Node's own pool serves small ones well. */
  minPooledBytes?: number;
  /** Idle memory kept for reuse; what is given back beyond it is left to the collector. */
  maxIdleBytes?: number;
  /** Overwrite memory when it is given back, so that a use after release shows (tests). */
  poison?: boolean;
}

const MiB = 1024 * 1024;

export class BufferPool {
  readonly #minPooled: number;
  readonly #maxIdle: number;
  readonly #poison: boolean;
  /** Idle ArrayBuffers by size class (a power of two), and the fewest idle since the last trim. */
  readonly #idle = new Map<number, { free: ArrayBuffer[]; low: number }>();
  #idleBytes = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.#minPooled = options.minPooledBytes ?? 256 * 1024;
    this.#maxIdle = options.maxIdleBytes ?? 64 * MiB;
    this.#poison = options.poison ?? false;
  }

  /** Memory kept for reuse right now, in bytes. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  lease(): BufferLease {
    return new BufferLease(this);
  }

  /** @internal A buffer of `size` bytes from a class large enough, or a plain one for small sizes. */
  take(size: number): { buf: Buffer; backing?: ArrayBuffer } {
    if (size < this.#minPooled || size === 0) return { buf: Buffer.allocUnsafe(size) };
    const cls = sizeClass(size);
    const list = this.#idle.get(cls);
    const idle = list?.free.pop();
    if (idle !== undefined) {
      this.#idleBytes -= cls;
      list!.low = Math.min(list!.low, list!.free.length);
    }
    const backing = idle ?? Buffer.allocUnsafeSlow(cls).buffer;
    return { buf: Buffer.from(backing, 0, size), backing };
  }

  /** @internal Takes back memory that nothing uses any more. */
  give(backing: ArrayBuffer): void {
    if (this.#poison) new Uint8Array(backing).fill(0xdb);
    const cls = backing.byteLength;
    if (this.#idleBytes + cls > this.#maxIdle) return;
    let list = this.#idle.get(cls);
    if (list === undefined) {
      list = { free: [], low: 0 };
      this.#idle.set(cls, list);
    }
    list.free.push(backing);
    this.#idleBytes += cls;
  }

  /**
   * Lets go of the memory no request needed since the last trim (per size class, the fewest
   * buffers that sat idle all along), so that a burst of large images does not hold its
   * peak memory forever. Call it periodically.
   */
  trim(): void {
    for (const list of this.#idle.values()) {
      const unused = list.free.splice(0, list.low);
      for (const backing of unused) this.#idleBytes -= backing.byteLength;
      list.low = list.free.length;
    }
  }
}

/** The buffers one request took; all given back by `release`. */
export class BufferLease {
  readonly #pool: BufferPool;
  #taken: ArrayBuffer[] = [];
  #released = false;

  constructor(pool: BufferPool) {
    this.#pool = pool;
  }

  readonly allocate: Allocate = (size) => {
    if (this.#released) return Buffer.allocUnsafe(size);
    const { buf, backing } = this.#pool.take(size);
    if (backing !== undefined) this.#taken.push(backing);
    return buf;
  };

  /** Another lease from the same pool, given back on its own (one event of a stream). */
  child(): BufferLease {
    return new BufferLease(this.#pool);
  }

  /** Gives every buffer back. Call only once nothing can read them (the answer is written). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const backing of this.#taken) this.#pool.give(backing);
    this.#taken = [];
  }
}

/** The power of two at or above `size`. */
function sizeClass(size: number): number {
  return 2 ** Math.ceil(Math.log2(size));
}
