/**
 * The test servers themselves: PostgreSQL and Redis start on free loopback ports, answer,
 * stop and start again on the same port with their data, and clean up.
 */
import { existsSync } from "node:fs";
import { connect } from "node:net";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { postgresBin, redisBin, startPostgres, startRedis } from "./services.ts";

/** Sends one inline Redis command and returns the first reply line. */
async function redis(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (d) => {
      data += d.toString();
      if (data.includes("\r\n")) {
        socket.end();
        resolve(data.split("\r\n")[0]!);
      }
    });
    socket.on("error", reject);
    socket.write(`${command}\r\n`);
  });
}

describe.skipIf(!redisBin())("startRedis", () => {
  it("serves on loopback, and restarts on the same port", async () => {
    const server = await startRedis();
    try {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(await redis(server.port, "PING")).toBe("+PONG");
      await server.stop();
      await expect(redis(server.port, "PING")).rejects.toThrow();
      await server.start();
      expect(await redis(server.port, "PING")).toBe("+PONG");
    } finally {
      await server.close();
    }
  });
});

describe.skipIf(!postgresBin())("startPostgres", () => {
  it("serves fresh databases on loopback, keeps data across a restart, and removes its directory", async () => {
    const server = await startPostgres();
    const url = await server.createDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("CREATE TABLE t (v int); INSERT INTO t VALUES (7)");
    await client.end();
    await server.stop();
    await server.start();
    const again = new pg.Client({ connectionString: url });
    await again.connect();
    expect((await again.query("SELECT v FROM t")).rows).toEqual([{ v: 7 }]);
    await again.end();
    expect(new URL(server.url).hostname).toBe("127.0.0.1");
    await server.close();
    expect(existsSync(server.dataDir)).toBe(false);
  }, 60_000);
});
