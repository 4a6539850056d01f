/**
 * The bench's h2load runner: reading h2load's report and per-request log, and (where h2load
 * is installed) real runs over HTTP/1.1 and HTTP/2 against local servers, including a gRPC
 * error (an HTTP 200 with an empty body) counted as a failure.
 */
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  h2loadArgs,
  h2loadLoad,
  h2loadResult,
  parseH2LoadLog,
  parseH2LoadReport,
} from "../../bench/h2load.ts";
import { hasTestProgram } from "../support/test-programs.ts";

const REPORT = `starting benchmark...
spawning thread #0: 1 total client(s). 8 total requests
Application protocol: h2c

finished in 41.32ms, 193.61 req/s, 267.30MB/s
requests: 8 total, 8 started, 8 done, 7 succeeded, 1 failed, 2 errored, 3 timeout
status codes: 7 2xx, 0 3xx, 1 4xx, 0 5xx
traffic: 11.05MB (11582059) total, 377B (377) headers (space savings 82.64%), 11.04MB (11575208) data
                     min         max         mean         sd        +/- sd
time for request:    14.21ms     35.47ms     25.06ms      6.25ms    62.50%
`;

describe("h2load's output", () => {
  it("reads the counters and the data bytes of the report", () => {
    expect(parseH2LoadReport(REPORT)).toEqual({
      errored: 2,
      timeout: 3,
      dataBytes: 11_575_208,
    });
  });

  it("refuses output without a report", () => {
    expect(() => parseH2LoadReport("connect: Connection refused\n")).toThrow(/no report/);
  });

  it("reads the per-request log and refuses a line it does not understand", () => {
    expect(parseH2LoadLog("1796304751128158\t200\t15788\n1796304751128133\t404\t900\n")).toEqual([
      { startUs: 1796304751128158, status: 200, durationUs: 15788 },
      { startUs: 1796304751128133, status: 404, durationUs: 900 },
    ]);
    expect(() => parseH2LoadLog("1796304751128158 200\n")).toThrow(/unexpected line/);
  });

  it("turns report and log into a load result: latencies of the 2xx, elapsed from first send to last answer", () => {
    const log = [
      { startUs: 1_000_000, status: 200, durationUs: 10_000 },
      { startUs: 1_002_000, status: 200, durationUs: 30_000 },
      { startUs: 1_005_000, status: 503, durationUs: 1_000 },
    ];
    const r = h2loadResult({ errored: 1, timeout: 0, dataBytes: 200 }, log, undefined, false);
    expect(r.ok).toBe(2);
    expect(r.failed).toBe(1);
    expect(r.statuses).toEqual({ "503": 1 });
    expect(r.errors).toBe(1);
    expect(r.elapsedMs).toBeCloseTo(32, 6);
    expect(r.p50Ms).toBe(10);
    expect(r.p99Ms).toBe(30);
    expect(r.rps).toBeCloseTo(2000 / 32, 6);
  });

  it("counts 200s whose bodies fall short of an image as failures (gRPC errors)", () => {
    const log = Array.from({ length: 4 }, (_, i) => ({
      startUs: i * 1000,
      status: 200,
      durationUs: 500,
    }));
    const r = h2loadResult({ errored: 0, timeout: 0, dataBytes: 2 * 1000 + 10 }, log, 1000, false);
    expect(r.ok).toBe(2);
    expect(r.failed).toBe(2);
    expect(r.statuses["short answer"]).toBe(2);
    expect(r.firstError).toMatch(/shorter than 1000 bytes/);
  });

  it("asks for HTTP/1.1 with one request per connection, HTTP/2 with streams and large windows", () => {
    const base = {
      url: "http://127.0.0.1:1/x",
      headers: { "content-type": "application/json" },
      body: "{}",
      connections: 4,
      streams: 8,
      amount: 10,
      maxSeconds: 5,
    };
    const h1 = h2loadArgs({ ...base, protocol: "http/1.1" }, "/b", "/l");
    expect(h1).toContain("--h1");
    expect(h1.slice(0, 6)).toEqual(["-n", "10", "-c", "4", "-m", "1"]);
    expect(h1).toContain("content-type: application/json");
    const h2 = h2loadArgs({ ...base, protocol: "h2" }, "/b", "/l");
    expect(h2).not.toContain("--h1");
    // At least one request per stream: 4 connections × 8 streams.
    expect(h2.slice(0, 6)).toEqual(["-n", "32", "-c", "4", "-m", "8"]);
    expect(h2.join(" ")).toContain("-w 24 -W 26");
  });
});

describe.skipIf(!hasTestProgram("h2load"))("h2load against real servers", () => {
  const answer = Buffer.alloc(50_000, 7);
  const seen: { h1: string[]; h2: string[] } = { h1: [], h2: [] };
  let h1: http.Server;
  let h2: http2.Http2Server;
  let h1Url: string;
  let h2Url: string;

  beforeAll(async () => {
    h1 = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (c: Buffer) => parts.push(c));
      req.on("end", () => {
        seen.h1.push(`${req.method} ${req.headers["content-type"]} ${Buffer.concat(parts)}`);
        res.writeHead(req.url === "/fail" ? 500 : 200).end(answer);
      });
    });
    // As a gRPC server: HTTP 200 always; an image, or (path /error) no body and an error in the trailers.
    h2 = http2.createServer();
    h2.on("stream", (stream, headers) => {
      const parts: Buffer[] = [];
      stream.on("data", (c: Buffer) => parts.push(c));
      stream.on("end", () => {
        seen.h2.push(`${headers[":method"]} ${headers["content-type"]} ${Buffer.concat(parts)}`);
        stream.respond(
          { ":status": 200, "content-type": "application/grpc" },
          { waitForTrailers: true },
        );
        stream.on("wantTrailers", () =>
          stream.sendTrailers({ "grpc-status": headers[":path"] === "/error" ? "13" : "0" }),
        );
        stream.end(headers[":path"] === "/error" ? undefined : answer);
      });
    });
    await Promise.all([
      new Promise<void>((r) => h1.listen(0, "127.0.0.1", r)),
      new Promise<void>((r) => h2.listen(0, "127.0.0.1", r)),
    ]);
    h1Url = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    h2Url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all([new Promise((r) => h1.close(r)), new Promise((r) => h2.close(r))]);
  });

  const run = (url: string, protocol: "http/1.1" | "h2", minBodyBytes?: number) =>
    h2loadLoad({
      url,
      protocol,
      headers: { "content-type": protocol === "h2" ? "application/grpc" : "application/json" },
      body: "hello",
      connections: protocol === "h2" ? 1 : 3,
      streams: 4,
      amount: 12,
      maxSeconds: 20,
      ...(minBodyBytes !== undefined ? { minBodyBytes } : {}),
    });

  it("sends every request over HTTP/1.1, with the body and headers, and times each answer", async () => {
    seen.h1.length = 0;
    const r = await run(`${h1Url}/ok`, "http/1.1");
    expect(r).toMatchObject({ ok: 12, failed: 0, errors: 0, timedOut: false });
    expect(seen.h1).toEqual(Array(12).fill("POST application/json hello"));
    expect(r.bytes).toBe(12 * answer.length);
    expect(r.p50Ms).toBeGreaterThan(0);
    expect(r.rps).toBeGreaterThan(0);
  });

  it("counts another status as failed", async () => {
    const r = await run(`${h1Url}/fail`, "http/1.1");
    expect(r).toMatchObject({ ok: 0, failed: 12, statuses: { "500": 12 } });
  });

  it("sends gRPC-shaped requests over one HTTP/2 connection and tells an error's empty 200 from an image", async () => {
    seen.h2.length = 0;
    const good = await run(`${h2Url}/ok`, "h2", answer.length);
    expect(good).toMatchObject({ ok: 12, failed: 0, errors: 0 });
    expect(seen.h2).toEqual(Array(12).fill("POST application/grpc hello"));
    const bad = await run(`${h2Url}/error`, "h2", answer.length);
    expect(bad).toMatchObject({ ok: 0, failed: 12 });
    expect(bad.firstError).toMatch(/shorter than/);
  });
});
