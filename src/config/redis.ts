/**
 * Where the Redis that replicas share is (contract: "Replicas share state (Redis)"):
 * `router_settings.redis_url`, or LiteLLM's `redis_host` / `redis_port` / `redis_password` /
 * `redis_db`, or the environment's `REDIS_URL`, in that order. None: the embedded default
 * (state in memory). The URL may carry a password; the caller registers it as a secret and
 * logs only `describeRedisUrl(url)`.
 */
import { ConfigError, type Env } from "./env.ts";
import type { RouterSettings } from "./schema.ts";

export interface RedisSettings {
  url: string;
  /** The password, if any (a secret: never echoed). */
  password: string | undefined;
}

export function redisSettings(
  router: RouterSettings,
  env: Env,
  source: string,
): RedisSettings | undefined {
  let url: string | undefined;
  if (router.redis_url !== undefined) url = router.redis_url;
  else if (router.redis_host !== undefined) {
    const u = new URL("redis://localhost");
    u.hostname = router.redis_host;
    if (router.redis_port !== undefined) u.port = String(router.redis_port);
    if (router.redis_password !== undefined) u.password = router.redis_password;
    if (router.redis_db !== undefined) u.pathname = `/${router.redis_db}`;
    url = u.href;
  } else if (env.REDIS_URL !== undefined && env.REDIS_URL !== "") url = env.REDIS_URL;
  else {
    for (const k of ["redis_port", "redis_password", "redis_db"] as const)
      if (router[k] !== undefined)
        throw new ConfigError(`${source}: router_settings.${k} needs router_settings.redis_host`);
    return undefined;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${source}: the Redis URL is not a URL (redis://host:port/db)`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    throw new ConfigError(
      `${source}: the Redis URL must start with redis:// or rediss://, not ${parsed.protocol}//`,
    );
  const password = parsed.password === "" ? undefined : decodeURIComponent(parsed.password);
  return { url, password };
}
