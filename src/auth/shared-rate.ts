/**
 * Gateway keys' `rpm_limit` across replicas: one Lua script per request, one round trip.
 *
 * The script keeps each key's admissions of the last minute in a sorted set scored by
 * Redis' own clock (so replicas' clocks need not agree) and admits a request only while
 * fewer than `rpm_limit` are in the window: at most `rpm_limit` in any minute across all
 * replicas, exactly, while Redis is reachable. A key's set holds at most `rpm_limit`
 * entries and expires a minute after its last admission.
 *
 * Redis unreachable, slow or failing: the replica decides on its own window (`RpmLimiter`),
 * which records every admission, also those Redis made, so an outage starts from this
 * replica's recent traffic rather than from zero. No request fails because of Redis.
 */
import type { RedisLink } from "../shared/redis-link.ts";
import { RpmLimiter } from "./rate.ts";

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

/** What the auth interceptor asks: admit a request of `key` under `limit` per minute? */
export interface KeyRateLimiter {
  admit(key: string, limit: number): RateDecision | Promise<RateDecision>;
}

const WINDOW_MS = 60_000;

/** KEYS[1]: the key's window. ARGV: limit, window ms, a unique member. → {admitted, ms until a slot frees}. */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
`;

type AdmitReply = [number, number];

export class SharedRpmLimiter implements KeyRateLimiter {
  readonly #link: RedisLink;
  readonly #local: RpmLimiter;
  #seq = 0;

  constructor(link: RedisLink, local = new RpmLimiter()) {
    this.#link = link;
    this.#local = local;
    link.client.defineCommand("imagegateKeyAdmit", { numberOfKeys: 1, lua: ADMIT });
  }

  admit(key: string, limit: number): RateDecision | Promise<RateDecision> {
    if (!this.#link.up) return this.#local.admit(key, limit);
    const member = `${this.#link.replicaId}:${++this.#seq}`;
    const run = (
      this.#link.client as unknown as {
        imagegateKeyAdmit(k: string, ...args: (string | number)[]): Promise<AdmitReply>;
      }
    ).imagegateKeyAdmit;
    return run.call(this.#link.client, `imagegate:key:${key}:rpm`, limit, WINDOW_MS, member).then(
      ([admitted, waitMs]): RateDecision => {
        if (admitted !== 1)
          return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
        // Kept locally too, for an outage to start from.
        this.#local.admit(key, Number.POSITIVE_INFINITY);
        return { ok: true };
      },
      () => this.#local.admit(key, limit),
    );
  }
}
