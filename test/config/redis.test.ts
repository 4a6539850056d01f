/**
 * Where the shared Redis is: `router_settings.redis_url`, LiteLLM's `redis_host` /
 * `redis_port` / `redis_password` / `redis_db`, or `REDIS_URL`; none: the embedded default.
 * A bad setting stops startup without echoing the password.
 */
import { describe, expect, it } from "vitest";
import { loadCatalog } from "../../src/catalog/catalog.ts";
import { ConfigError, type Env } from "../../src/config/env.ts";
import { parseConfig } from "../../src/config/load.ts";
import { describeRedisUrl } from "../../src/shared/redis-link.ts";

const catalog = loadCatalog();
const PASSWORD = "pw-LEAKCHECK-3c1e9a";
const load = (router: string, env: Env = {}) =>
  parseConfig(router === "" ? "" : `router_settings:\n${router}`, env, catalog, "test");

function configError(router: string, env: Env = {}): ConfigError {
  try {
    load(router, env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected the config to be rejected, but it loaded");
}

describe("router_settings: Redis", () => {
  it("is absent by default (state in memory)", () => {
    expect(load("").redis).toBeUndefined();
    expect(load("  num_retries: 1\n").redis).toBeUndefined();
  });

  it("takes redis_url, with its password kept apart as a secret", () => {
    const config = load(`  redis_url: redis://:${PASSWORD}@redis.internal:6380/2\n`);
    expect(config.redis).toEqual({
      url: `redis://:${PASSWORD}@redis.internal:6380/2`,
      password: PASSWORD,
    });
  });

  it("builds the URL from LiteLLM's redis_host, redis_port, redis_password and redis_db", () => {
    const config = load(
      `  redis_host: redis.internal\n  redis_port: 6380\n  redis_password: ${PASSWORD}\n  redis_db: 3\n`,
    );
    expect(config.redis?.password).toBe(PASSWORD);
    const url = new URL(config.redis!.url);
    expect([url.protocol, url.hostname, url.port, url.pathname]).toEqual([
      "redis:",
      "redis.internal",
      "6380",
      "/3",
    ]);
    expect(load("  redis_host: redis.internal\n").redis?.url).toBe("redis://redis.internal");
  });

  it("falls back to REDIS_URL, which the config's own keys override", () => {
    const env = { REDIS_URL: "redis://from-env:6379/1" };
    expect(load("", env).redis?.url).toBe("redis://from-env:6379/1");
    expect(load("  redis_url: redis://from-file:6379\n", env).redis?.url).toBe(
      "redis://from-file:6379",
    );
    expect(load("", { REDIS_URL: "" }).redis).toBeUndefined();
  });

  it("refuses a port, password or db without a host, and a URL that is not redis://, without echoing it", () => {
    expect(configError("  redis_port: 6380\n").message).toContain(
      "router_settings.redis_port needs router_settings.redis_host",
    );
    const notRedis = configError(`  redis_url: http://:${PASSWORD}@redis.internal\n`).message;
    expect(notRedis).toContain("redis://");
    expect(notRedis).not.toContain(PASSWORD);
    const notUrl = configError(`  redis_url: ${PASSWORD}\n`).message;
    expect(notUrl).not.toContain(PASSWORD);
  });

  it("names only host, port and db in log lines", () => {
    expect(describeRedisUrl(`redis://user:${PASSWORD}@redis.internal:6380/2`)).toBe(
      "redis.internal:6380/2",
    );
    expect(describeRedisUrl("redis://localhost")).toBe("localhost:6379/0");
  });
});
