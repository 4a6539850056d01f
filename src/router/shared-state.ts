/**
 * Router state shared by replicas through Redis (contract: "Replicas share state (Redis)").
 *
 * The request path reads local memory only, kept fresh in the background:
 * - Every SYNC_MS one Lua script, one round trip, writes what this replica did since the
 *   last sync (requests, its in-flight counts, latencies) and reads back every deployment's
 *   shared figures: requests in the last minute, others' requests in flight, the last
 *   LATENCY_SAMPLES latencies and the cooldown's remaining time.
 * - A cooldown is a key with a TTL, set by one script that also clears the failure count
 *   and publishes it; every replica applies the message at once, and the next sync catches
 *   any missed (so another replica's cooldown is seen within one second, usually at once).
 *
 * Atomic decisions, each one script and one round trip, only where a limit needs one:
 * - `begin` of a deployment with `rpm` or `max_parallel_requests` (a sliding window of its
 *   admissions in a sorted set by Redis' clock, and each replica's in-flight count), so the
 *   limits hold across replicas give or take one request per replica in flight to Redis.
 * - `recordFailure` (a sorted set of the last minute's failures): `allowed_fails` counts
 *   every replica's failures.
 *
 * Bounded: a deployment's usage is 13 five-second counters, its latency a list of 10, its
 * in-flight counts one field per live replica (a replica silent for REPLICA_LIVE_MS no
 * longer counts), its rpm window at most `rpm` entries.
 *
 * Redis unreachable: every answer comes from `#local`, an InMemoryRouterState that always
 * records this replica's own traffic, exactly the embedded mode. Shared figures older than
 * STALE_MS are not trusted either.
 */
import type { RedisLink } from "../shared/redis-link.ts";
import { type DeploymentLimits, InMemoryRouterState, type RouterState } from "./state.ts";

const WINDOW_MS = 60_000;
const SYNC_MS = 200;
/** Shared figures older than this are not used (Redis stalled without dropping the connection). */
const STALE_MS = 2000;
const BUCKET_MS = 5000;
const LATENCY_SAMPLES = 10;
const REPLICA_LIVE_MS = 10_000;
/** In-flight counts and latency lists of a deployment nobody used for an hour are dropped. */
const IDLE_TTL_MS = 3_600_000;
const COOLDOWN_CHANNEL = "imagegate:cooldown";

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Sum of the live replicas' in-flight counts other than `me`; forgets replicas gone silent. */
const OTHERS_INFLIGHT = `
local function others_inflight(inf, replicas, me, now, live)
  local total = 0
  local f = redis.call('HGETALL', inf)
  for j = 1, #f, 2 do
    if f[j] ~= me then
      local seen = redis.call('ZSCORE', replicas, f[j])
      if seen and tonumber(seen) >= now - live then
        total = total + tonumber(f[j + 1])
      else
        redis.call('HDEL', inf, f[j])
      end
    end
  end
  return total
end
`;

/**
 * KEYS: replicas, then per deployment: cooldown, usage, inflight, latencies, rpm window.
 * ARGV: me, live ms, bucket ms, window ms, idle ttl ms, then per deployment: limited (0/1),
 * new requests, my in-flight count (-1: unchanged), new latencies ("" or "12.5,30.1").
 * Returns per deployment: {cooldown pttl, requests, ms until the rpm window frees (-1),
 * others in flight, latency sum in µs, latency samples}.
 */
const SYNC = `${NOW_MS}${OTHERS_INFLIGHT}
local me, live, bucket_ms, window, idle = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], now, me)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * live)
redis.call('PEXPIRE', KEYS[1], 10 * live)
local bucket = math.floor(now / bucket_ms)
local first = math.floor((now - window) / bucket_ms) + 1
local out = {}
for i = 0, (#KEYS - 1) / 5 - 1 do
  local cd, use, inf, lat, rpm = KEYS[2 + i * 5], KEYS[3 + i * 5], KEYS[4 + i * 5], KEYS[5 + i * 5], KEYS[6 + i * 5]
  local limited, delta, mine, lats = ARGV[6 + i * 4] == '1', tonumber(ARGV[7 + i * 4]), tonumber(ARGV[8 + i * 4]), ARGV[9 + i * 4]
  if delta > 0 then
    redis.call('HINCRBY', use, bucket, delta)
    redis.call('PEXPIRE', use, window + bucket_ms)
  end
  if mine >= 0 then
    redis.call('HSET', inf, me, mine)
    redis.call('PEXPIRE', inf, idle)
  end
  if lats ~= '' then
    for v in string.gmatch(lats, '[^,]+') do redis.call('LPUSH', lat, v) end
    redis.call('LTRIM', lat, 0, ${LATENCY_SAMPLES - 1})
    redis.call('PEXPIRE', lat, idle)
  end
  local requests, frees = 0, -1
  if limited then
    redis.call('ZREMRANGEBYSCORE', rpm, '-inf', now - window)
    requests = redis.call('ZCARD', rpm)
    if requests > 0 then
      frees = tonumber(redis.call('ZRANGE', rpm, 0, 0, 'WITHSCORES')[2]) + window - now
    end
  else
    local h = redis.call('HGETALL', use)
    for j = 1, #h, 2 do
      if tonumber(h[j]) < first then redis.call('HDEL', use, h[j]) else requests = requests + tonumber(h[j + 1]) end
    end
  end
  local l = redis.call('LRANGE', lat, 0, -1)
  local sum = 0
  for j = 1, #l do sum = sum + tonumber(l[j]) end
  out[#out + 1] = {redis.call('PTTL', cd), requests, frees, others_inflight(inf, KEYS[1], me, now, live), math.floor(sum * 1000), #l}
end
return out
`;

/**
 * KEYS: replicas, inflight, rpm window. ARGV: me, live ms, window ms, rpm (-1: none),
 * max parallel (-1: none), a unique member, my in-flight count before this request.
 * Returns {1, 0} admitted, {0, ms until the window frees} over rpm, {0, -1} at max parallel.
 */
const BEGIN = `${NOW_MS}${OTHERS_INFLIGHT}
local me, live, window, rpm, par, mine = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[7])
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  if redis.call('ZCARD', KEYS[3]) >= rpm then
    return {0, tonumber(redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2]) + window - now}
  end
end
if par >= 0 and others_inflight(KEYS[2], KEYS[1], me, now, live) + mine >= par then
  return {0, -1}
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[3], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], window)
end
redis.call('ZADD', KEYS[1], now, me)
redis.call('HSET', KEYS[2], me, mine + 1)
redis.call('PEXPIRE', KEYS[2], ${IDLE_TTL_MS})
return {1, 0}
`;

/** KEYS: failures. ARGV: window ms, a unique member. Returns the failures in the window. */
const FAIL = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('ZCARD', KEYS[1])
`;

/** KEYS: cooldown, failures. ARGV: ttl ms, channel, deployment id. Never shortens a cooldown. */
const COOL = `
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], '1', 'PX', ttl) end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\\n' .. ttl)
return 1
`;

type SyncReply = [number, number, number, number, number, number][];

interface Scripts {
  imagegateSync(...args: (string | number)[]): Promise<SyncReply>;
  imagegateBegin(...args: (string | number)[]): Promise<[number, number]>;
  imagegateFail(...args: (string | number)[]): Promise<number>;
  imagegateCool(...args: (string | number)[]): Promise<number>;
}

/** What the last sync said about one deployment, in this replica's clock. */
interface Shared {
  requests: number;
  /** When the oldest request of the rpm window leaves it (limited deployments). */
  freesAt: number | undefined;
  othersInflight: number;
  latency: number | undefined;
}

/** This replica's traffic not yet written to Redis. */
interface Unsent {
  requests: number;
  latencies: number[];
}

export interface SharedRouterStateOptions {
  /** Deployments known at start, with their limits (more are learned as they are used). */
  deployments?: Iterable<{ id: string } & DeploymentLimits>;
  now?: () => number;
}

export class SharedRouterState implements RouterState {
  readonly #link: RedisLink;
  readonly #scripts: Scripts;
  readonly #now: () => number;
  /** This replica's own figures: the whole answer while Redis is unreachable. */
  readonly #local = new InMemoryRouterState();
  readonly #limits = new Map<string, DeploymentLimits>();
  #shared = new Map<string, Shared>();
  #syncedAt = Number.NEGATIVE_INFINITY;
  #unsent = new Map<string, Unsent>();
  /** The batch the sync in flight carries: counted until its answer includes it. */
  #sending: Map<string, Unsent> | undefined;
  /** Deployments whose in-flight count changed since the last sync. */
  readonly #dirty = new Set<string>();
  /** `begin`s sent to Redis and not answered, per deployment. */
  readonly #acquiring = new Map<string, number>();
  /** Cooldowns other replicas set: until when (this replica's clock), and when we learnt it. */
  readonly #remoteCooldowns = new Map<string, { until: number; learnt: number }>();
  #seq = 0;
  #syncing = false;
  readonly #timer: NodeJS.Timeout;

  constructor(link: RedisLink, options: SharedRouterStateOptions = {}) {
    this.#link = link;
    this.#now = options.now ?? Date.now;
    for (const d of options.deployments ?? []) this.#learn(d.id, d);
    const client = link.client;
    client.defineCommand("imagegateSync", { lua: SYNC });
    client.defineCommand("imagegateBegin", { numberOfKeys: 3, lua: BEGIN });
    client.defineCommand("imagegateFail", { numberOfKeys: 1, lua: FAIL });
    client.defineCommand("imagegateCool", { numberOfKeys: 2, lua: COOL });
    this.#scripts = client as unknown as Scripts;

    const sub = link.subscriber();
    sub.on("message", (_channel: string, message: string) => this.#onCooldown(message));
    void sub.subscribe(COOLDOWN_CHANNEL).catch(() => {});
    link.onUp(() => {
      // Redis may have restarted empty, or dropped this replica as silent: rewrite its counts.
      for (const id of this.#limits.keys()) this.#dirty.add(id);
      this.#sync();
    });
    link.onDown(() => {
      this.#shared = new Map();
      this.#unsent = new Map();
      this.#syncedAt = Number.NEGATIVE_INFINITY;
    });
    this.#timer = setInterval(() => this.#sync(), SYNC_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
  }

  // --- reads: local memory only -------------------------------------------------------

  inflight(id: string): number {
    return this.#local.inflight(id) + (this.#fresh(id)?.othersInflight ?? 0);
  }

  recentRequests(id: string, now: number): number {
    const shared = this.#fresh(id);
    if (shared === undefined) return this.#local.recentRequests(id, now);
    // A limited deployment's window is written by `begin` itself.
    if (isLimited(this.#limits.get(id))) return shared.requests;
    return (
      shared.requests +
      (this.#unsent.get(id)?.requests ?? 0) +
      (this.#sending?.get(id)?.requests ?? 0)
    );
  }

  windowFreesAt(id: string, now: number): number {
    const shared = this.#fresh(id);
    if (shared === undefined) return this.#local.windowFreesAt(id, now);
    return Math.max(now, shared.freesAt ?? now);
  }

  cooldownUntil(id: string, now: number): number | undefined {
    const local = this.#local.cooldownUntil(id, now);
    const remote = this.#remoteCooldowns.get(id)?.until;
    const until = Math.max(local ?? 0, remote ?? 0);
    return until > now ? until : undefined;
  }

  latency(id: string): number | undefined {
    return this.#fresh(id)?.latency ?? this.#local.latency(id);
  }

  // --- writes ---------------------------------------------------------------------------

  begin(id: string, now: number, limits?: DeploymentLimits): boolean | Promise<boolean> {
    this.#learn(id, limits);
    if (!this.#link.up || !isLimited(limits)) {
      this.#local.begin(id, now);
      this.#dirty.add(id);
      if (this.#link.up) this.#unsentOf(id).requests += 1;
      return true;
    }
    const mine = this.#local.inflight(id) + (this.#acquiring.get(id) ?? 0);
    this.#acquiring.set(id, (this.#acquiring.get(id) ?? 0) + 1);
    const k = keys(id);
    return this.#scripts
      .imagegateBegin(
        "imagegate:replicas",
        k.inflight,
        k.rpm,
        this.#link.replicaId,
        REPLICA_LIVE_MS,
        WINDOW_MS,
        limits.rpm ?? -1,
        limits.maxParallel ?? -1,
        this.#member(),
        mine,
      )
      .then(
        ([admitted, waitMs]) => {
          this.#acquired(id);
          if (admitted === 1) {
            this.#local.begin(id, now);
            return true;
          }
          this.#dirty.add(id);
          this.#learnFull(id, limits, waitMs);
          return false;
        },
        () => {
          // Redis failed us: decide on this replica's own figures, as when it is down.
          this.#acquired(id);
          if (!underLimits(this.#local, id, now, limits)) return false;
          this.#local.begin(id, now);
          this.#dirty.add(id);
          return true;
        },
      );
  }

  end(id: string): void {
    this.#local.end(id);
    this.#dirty.add(id);
    // A parallel-request slot frees for every replica now, not at the next sync.
    const limits = this.#limits.get(id);
    if (this.#link.up && limits?.maxParallel !== undefined) {
      this.#dirty.delete(id);
      const k = keys(id);
      this.#link.client
        .hset(k.inflight, this.#link.replicaId, this.#mine(id))
        .catch(() => this.#dirty.add(id));
    }
  }

  recordFailure(id: string, now: number): number | Promise<number> {
    const local = this.#local.recordFailure(id, now);
    if (!this.#link.up) return local;
    return this.#scripts
      .imagegateFail(keys(id).failures, WINDOW_MS, this.#member())
      .then(Number, () => local);
  }

  coolDown(id: string, until: number): void {
    this.#local.coolDown(id, until);
    const ttl = Math.ceil(until - this.#now());
    if (!this.#link.up || ttl <= 0) return;
    const k = keys(id);
    this.#scripts.imagegateCool(k.cooldown, k.failures, ttl, COOLDOWN_CHANNEL, id).catch(() => {}); // this replica has it; the others rely on Redis, which is failing
  }

  recordLatency(id: string, ms: number): void {
    this.#local.recordLatency(id, ms);
    if (!this.#link.up) return;
    const l = this.#unsentOf(id).latencies;
    l.push(ms);
    if (l.length > LATENCY_SAMPLES) l.shift();
  }

  // --- background -----------------------------------------------------------------------

  #sync(): void {
    if (!this.#link.up || this.#syncing) return;
    this.#syncing = true;
    const ids = [...this.#limits.keys()];
    const sending = this.#unsent;
    this.#unsent = new Map();
    this.#sending = sending;
    const sentAt = this.#now();
    const args: (string | number)[] = [1 + ids.length * 5, "imagegate:replicas"];
    for (const id of ids) {
      const k = keys(id);
      args.push(k.cooldown, k.usage, k.inflight, k.latencies, k.rpm);
    }
    args.push(this.#link.replicaId, REPLICA_LIVE_MS, BUCKET_MS, WINDOW_MS, IDLE_TTL_MS);
    const dirty = new Set(this.#dirty);
    this.#dirty.clear();
    for (const id of ids) {
      const unsent = sending.get(id);
      args.push(
        isLimited(this.#limits.get(id)) ? 1 : 0,
        unsent?.requests ?? 0,
        dirty.has(id) ? this.#mine(id) : -1,
        (unsent?.latencies ?? []).map((ms) => ms.toFixed(3)).join(","),
      );
    }
    this.#scripts
      .imagegateSync(...args)
      .then(
        (reply) => {
          const now = this.#now();
          const shared = new Map<string, Shared>();
          reply.forEach(([pttl, requests, frees, others, latencyMicros, samples], i) => {
            const id = ids[i]!;
            shared.set(id, {
              requests,
              freesAt: frees >= 0 ? now + frees : undefined,
              othersInflight: others,
              latency: samples > 0 ? latencyMicros / 1000 / samples : undefined,
            });
            const remote = this.#remoteCooldowns.get(id);
            if (pttl > 0) this.#remoteCooldowns.set(id, { until: now + pttl, learnt: now });
            // Gone from Redis: over, unless a message newer than this sync set it.
            else if (remote !== undefined && remote.learnt <= sentAt)
              this.#remoteCooldowns.delete(id);
          });
          this.#shared = shared;
          this.#syncedAt = now;
        },
        () => {
          for (const id of dirty) this.#dirty.add(id);
        },
      )
      .finally(() => {
        this.#sending = undefined;
        this.#syncing = false;
      });
  }

  #onCooldown(message: string): void {
    const cut = message.lastIndexOf("\n");
    const id = message.slice(0, cut);
    const ttl = Number(message.slice(cut + 1));
    if (cut < 0 || !Number.isFinite(ttl)) return;
    const now = this.#now();
    const until = now + ttl;
    const known = this.#remoteCooldowns.get(id);
    if (known === undefined || known.until < until)
      this.#remoteCooldowns.set(id, { until, learnt: now });
  }

  // --- helpers --------------------------------------------------------------------------

  /** The shared figures of `id` if Redis is up and they are recent. */
  #fresh(id: string): Shared | undefined {
    if (!this.#link.up || this.#now() - this.#syncedAt > STALE_MS) return undefined;
    return this.#shared.get(id);
  }

  #learn(id: string, limits: DeploymentLimits | undefined): void {
    if (this.#limits.has(id)) return;
    this.#limits.set(id, { rpm: limits?.rpm, maxParallel: limits?.maxParallel });
    this.#dirty.add(id);
  }

  /** After a refusal, the local view says what Redis said, until the next sync. */
  #learnFull(id: string, limits: DeploymentLimits, waitMs: number): void {
    const shared = this.#fresh(id);
    if (shared === undefined) return;
    const now = this.#now();
    if (waitMs >= 0 && limits.rpm !== undefined) {
      shared.requests = Math.max(shared.requests, limits.rpm);
      shared.freesAt = now + waitMs;
    } else if (limits.maxParallel !== undefined) {
      shared.othersInflight = Math.max(
        shared.othersInflight,
        limits.maxParallel - this.#local.inflight(id),
      );
    }
  }

  #acquired(id: string): void {
    const n = (this.#acquiring.get(id) ?? 1) - 1;
    if (n > 0) this.#acquiring.set(id, n);
    else this.#acquiring.delete(id);
  }

  /** This replica's in-flight count as Redis should hold it (sent `begin`s included). */
  #mine(id: string): number {
    return this.#local.inflight(id) + (this.#acquiring.get(id) ?? 0);
  }

  #unsentOf(id: string): Unsent {
    let u = this.#unsent.get(id);
    if (u === undefined) {
      u = { requests: 0, latencies: [] };
      this.#unsent.set(id, u);
    }
    return u;
  }

  #member(): string {
    return `${this.#link.replicaId}:${++this.#seq}`;
  }
}

function isLimited(limits: DeploymentLimits | undefined): limits is DeploymentLimits {
  return limits?.rpm !== undefined || limits?.maxParallel !== undefined;
}

function underLimits(
  state: RouterState,
  id: string,
  now: number,
  limits: DeploymentLimits,
): boolean {
  return (
    (limits.rpm === undefined || state.recentRequests(id, now) < limits.rpm) &&
    (limits.maxParallel === undefined || state.inflight(id) < limits.maxParallel)
  );
}

function keys(id: string) {
  const p = `imagegate:deployment:${id}`;
  return {
    cooldown: `${p}:cooldown`,
    failures: `${p}:failures`,
    usage: `${p}:usage`,
    inflight: `${p}:inflight`,
    latencies: `${p}:latency`,
    rpm: `${p}:rpm`,
  };
}
