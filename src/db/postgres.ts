/**
 * The shared database: Postgres through `pg`'s pool, queried through Kysely's Postgres
 * dialect. Replicas given the same `database_url` share keys, spend and the spend log.
 * Migrations run at open, one replica at a time (an advisory lock, see migrations.ts).
 */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { migratePostgres } from "./migrations.ts";
import type { Schema } from "./schema.ts";

const INT8_OID = 20;

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** How long a request waits for a connection before failing, ms. */
  connectionTimeoutMs?: number;
}

export interface PostgresDatabase {
  readonly dialect: "postgres";
  readonly db: Kysely<Schema>;
  readonly pool: pg.Pool;
  /** The URL without its password, for messages. */
  readonly where: string;
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (another replica's change), on a
   * connection of its own that comes back by itself after an outage (and then calls
   * `onNotify("")` once: notifications meanwhile were missed).
   */
  listen(channel: string, onNotify: (payload: string) => void): { close(): Promise<void> };
  close(): Promise<void>;
}

/** Opens the pool and applies the migrations; throws if the database cannot be reached. */
export async function openPostgres(
  url: string,
  options: PostgresOptions = {},
): Promise<PostgresDatabase> {
  const database = connectPostgres(url, options);
  try {
    await migratePostgres(database.pool, database.db);
  } catch (e) {
    await database.close();
    throw e;
  }
  return database;
}

/**
 * The pool, without touching the server: the gateway's PostgresLink (postgres-link.ts)
 * migrates once the database answers, so a gateway can start while it is down.
 */
export function connectPostgres(url: string, options: PostgresOptions = {}): PostgresDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    // Dead peers found by TCP too; the queries a request waits for carry their own timeout
    // (postgres-link.ts's QUERY_TIMEOUT_MS), reports and other long reads none.
    keepAlive: true,
    // Times are epoch ms and counts are small: int8 (bigint, count(*), sum of integers) as
    // a number, not the string pg gives by default.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
    },
  });
  // An idle connection the server dropped must not take the process down.
  pool.on("error", () => {});
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    dialect: "postgres",
    db,
    pool,
    where: redactUrl(url),
    listen: (channel, onNotify) => listen(url, channel, onNotify),
    async close() {
      await db.destroy();
    },
  };
}

const LISTEN_RETRY_MS = 1000;

function listen(
  url: string,
  channel: string,
  onNotify: (payload: string) => void,
): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let closed = false;
  let connected = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = () => {
    if (!closed) timer = setTimeout(connect, LISTEN_RETRY_MS).unref();
  };
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url, keepAlive: true });
    c.on("error", () => {});
    c.on("notification", (n) => {
      if (n.channel === channel) onNotify(n.payload ?? "");
    });
    c.on("end", () => {
      if (client !== c) return;
      client = undefined;
      retry();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch {
      await c.end().catch(() => {});
      retry();
      return;
    }
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    if (connected) onNotify("");
    connected = true;
  };
  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}

/** `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return "(a database URL)";
  }
}
