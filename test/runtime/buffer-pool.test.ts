import { describe, expect, it } from "vitest";
import { BufferPool } from "../../src/runtime/buffer-pool.ts";

const MiB = 1024 * 1024;

describe("BufferPool", () => {
  it("hands out exactly the size asked, and reuses memory a released lease gave back", () => {
    const pool = new BufferPool({ minPooledBytes: 1024 });
    const first = pool.lease();
    const a = first.allocate(1_500_000);
    expect(a.length).toBe(1_500_000);
    expect(a.buffer.byteLength).toBe(2 * MiB);
    first.release();
    expect(pool.idleBytes).toBe(2 * MiB);

    const second = pool.lease();
    const b = second.allocate(1_900_000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.idleBytes).toBe(0);
    // A different size class does not take it.
    expect(second.allocate(600_000).buffer).not.toBe(a.buffer);
  });

  it("keeps small requests out of the pool", () => {
    const pool = new BufferPool({ minPooledBytes: 4096 });
    const lease = pool.lease();
    lease.allocate(100);
    lease.allocate(0);
    lease.release();
    expect(pool.idleBytes).toBe(0);
  });

  it("gives out plain memory after release, so late work never shares memory with a new request", () => {
    const pool = new BufferPool({ minPooledBytes: 1024 });
    const lease = pool.lease();
    lease.allocate(10_000);
    lease.release();
    const late = lease.allocate(10_000);
    lease.release(); // a second release gives nothing back twice
    expect(pool.idleBytes).toBe(16 * 1024);
    const next = pool.lease().allocate(10_000);
    expect(next.buffer).not.toBe(late.buffer);
  });

  it("keeps at most maxIdleBytes for reuse", () => {
    const pool = new BufferPool({ minPooledBytes: 1024, maxIdleBytes: 3 * MiB });
    const lease = pool.lease();
    for (let i = 0; i < 4; i++) lease.allocate(MiB);
    lease.release();
    expect(pool.idleBytes).toBe(3 * MiB);
  });

  it("poisons memory when it is given back, so a use after release shows", () => {
    const pool = new BufferPool({ minPooledBytes: 1, poison: true });
    const lease = pool.lease();
    const buf = lease.allocate(64);
    buf.fill(7);
    lease.release();
    expect([...buf].every((b) => b === 0xdb)).toBe(true);
  });
});

describe("BufferPool.trim", () => {
  it("lets go of what sat idle since the last trim, and keeps what requests used", () => {
    const pool = new BufferPool({ minPooledBytes: 1024 });
    const burst = pool.lease();
    for (let i = 0; i < 4; i++) burst.allocate(MiB);
    burst.release();
    expect(pool.idleBytes).toBe(4 * MiB);
    pool.trim(); // nothing was idle all along since the (implicit) last trim: the burst just gave it back
    expect(pool.idleBytes).toBe(4 * MiB);

    // One request at a time uses one buffer: three sit idle for the whole interval.
    for (let i = 0; i < 5; i++) {
      const lease = pool.lease();
      lease.allocate(MiB);
      lease.release();
    }
    pool.trim();
    expect(pool.idleBytes).toBe(1 * MiB);

    // Unused for a whole interval: gone.
    pool.trim();
    expect(pool.idleBytes).toBe(0);
    // And the pool works on.
    const lease = pool.lease();
    expect(lease.allocate(MiB).length).toBe(MiB);
  });
});
