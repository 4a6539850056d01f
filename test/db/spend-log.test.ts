/**
 * The spend log on both databases: the writer batches rows off the caller's path and
 * flushes them on close, a failed flush keeps its rows for the next one, logs filter by
 * day range and fields, and the report's SQL groups equal the sums of the logs.
 */
import { describe, expect, it } from "vitest";
import {
  dayRange,
  pruneSpendLogs,
  REPORT_GROUPS,
  type SpendLogEntry,
  SpendLogWriter,
  spendLogs,
  spendReport,
} from "../../src/db/spend-log.ts";
import { onEachDatabase } from "../support/databases.ts";

const DAY = 86_400_000;
const DEC_1 = Date.parse("2026-12-01T00:00:00Z");

function startOf(i: number): number {
  return i === 59 ? DEC_1 + 3 * DAY - 1 : DEC_1 + (i % 3) * DAY + i * 1000;
}

function entry(i: number): SpendLogEntry {
  return {
    requestId: `req-${i}`,
    apiKey: i % 3 === 0 ? undefined : `key-${i % 3}`,
    keyAlias: i % 3 === 0 ? undefined : `team-${i % 3}`,
    endUser: i % 2 === 0 ? "alice" : "bob",
    model: i % 4 === 0 ? "image-hq" : "cheap",
    modelId: `dep-${i % 4}`,
    provider: i % 4 === 0 ? "openai" : "gemini",
    status: i % 5 === 0 ? "failure" : "success",
    spend: i % 5 === 0 ? 0 : 0.01 * (1 + (i % 7)),
    images: i % 5 === 0 ? 0 : 1 + (i % 2),
    size: "1024x1024",
    quality: "standard",
    // Spread over three days; the last row in the last millisecond of Dec 3rd.
    startTime: startOf(i),
    endTime: startOf(i) + 500,
    attempts: 1 + (i % 2),
    // Odd rows retried once: their first attempt failed.
    attemptLog: [
      ...(i % 2 === 1 ? [{ deployment: "dep-x", error: "upstream_timeout" }] : []),
      { deployment: `dep-${i % 4}` },
    ],
  };
}

describe("dayRange", () => {
  it("covers both days whole, in UTC, and refuses what is not a date range", () => {
    expect(dayRange("2026-12-01", "2026-12-03")).toEqual({ from: DEC_1, to: DEC_1 + 3 * DAY });
    expect(dayRange("2026-12-03", "2026-12-01")).toBeUndefined();
    expect(dayRange("2026-02-31", "2026-03-01")).toBeUndefined();
    expect(dayRange("12/01/2026", "2026-12-01")).toBeUndefined();
  });
});

onEachDatabase((open) => {
  it("writes in batches off the caller's path, and everything by close", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database, { flushIntervalMs: 60_000, maxBatch: 1000 });
    for (let i = 0; i < 60; i++) writer.write(entry(i));
    // Nothing written yet: write() only queued.
    expect(writer.pending).toBe(60);
    const range = dayRange("2026-12-01", "2026-12-03")!;
    expect(await spendLogs(database, range)).toEqual([]);
    await writer.close();
    expect(writer.pending).toBe(0);
    const rows = await spendLogs(database, range);
    expect(rows).toHaveLength(60);
    expect(rows.find((r) => r.request_id === "req-4")).toEqual({
      request_id: "req-4",
      api_key: "key-1",
      key_alias: "team-1",
      end_user: "alice",
      model: "image-hq",
      model_id: "dep-0",
      provider: "openai",
      status: "success",
      spend: 0.05,
      images: 1,
      size: "1024x1024",
      quality: "standard",
      startTime: new Date(DEC_1 + DAY + 4000).toISOString(),
      endTime: new Date(DEC_1 + DAY + 4500).toISOString(),
      attempts: 1,
      attempt_log: [{ deployment: "dep-0" }],
    });
    expect(rows.find((r) => r.request_id === "req-5")!.attempt_log).toEqual([
      { deployment: "dep-x", error: "upstream_timeout" },
      { deployment: "dep-1" },
    ]);
    expect(() => writer.write(entry(0))).toThrow();
  });

  it("flushes by itself once a batch is full", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database, { flushIntervalMs: 60_000, maxBatch: 10 });
    try {
      for (let i = 0; i < 10; i++) writer.write(entry(i));
      const range = dayRange("2026-12-01", "2026-12-03")!;
      for (let i = 0; i < 200 && (await spendLogs(database, range)).length < 10; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(await spendLogs(database, range)).toHaveLength(10);
    } finally {
      await writer.close();
    }
  });

  it("keeps the rows of a failed flush for the next one, and writes each row once", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) writer.write(entry(i));
    await database.db.schema.alterTable("spend_logs").renameTo("spend_logs_away").execute();
    await expect(writer.flush()).rejects.toThrow();
    expect(writer.pending).toBe(5);
    await database.db.schema.alterTable("spend_logs_away").renameTo("spend_logs").execute();
    writer.write(entry(5));
    await writer.close();
    expect(await spendLogs(database, dayRange("2026-12-01", "2026-12-03")!)).toHaveLength(6);
  });

  it("filters logs by day range and fields", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database);
    for (let i = 0; i < 60; i++) writer.write(entry(i));
    await writer.close();
    const all = (await spendLogs(database, dayRange("2026-12-01", "2026-12-03")!)).map(
      (r) => r.request_id,
    );
    expect(all).toHaveLength(60);
    const dec2 = await spendLogs(database, dayRange("2026-12-02", "2026-12-02")!);
    expect(dec2.map((r) => r.request_id).sort()).toEqual(
      Array.from({ length: 60 }, (_, i) => i)
        .filter((i) => i % 3 === 1)
        .map((i) => `req-${i}`)
        .sort(),
    );
    // The last millisecond of the end day is in; the next day is not.
    const dec3 = await spendLogs(database, dayRange("2026-12-03", "2026-12-03")!);
    expect(dec3.map((r) => r.request_id)).toContain("req-59");
    expect(await spendLogs(database, dayRange("2026-12-04", "2026-12-04")!)).toEqual([]);
    const filtered = await spendLogs(database, {
      ...dayRange("2026-12-01", "2026-12-03")!,
      apiKey: "key-1",
      model: "image-hq",
      endUser: "alice",
    });
    expect(filtered.map((r) => r.request_id).sort()).toEqual(
      ["req-4", "req-16", "req-28", "req-40", "req-52"].sort(),
    );
    expect(
      await spendLogs(database, { ...dayRange("2026-12-01", "2026-12-03")!, requestId: "req-7" }),
    ).toHaveLength(1);
    // Newest first.
    const times = await spendLogs(database, { from: 0, to: 1e15 });
    expect(times.map((r) => r.startTime)).toEqual(
      times
        .map((r) => r.startTime)
        .sort()
        .reverse(),
    );
  });

  it("reports each grouping as the sums of the logs, aggregated in SQL", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database);
    const entries = Array.from({ length: 60 }, (_, i) => entry(i));
    for (const e of entries) writer.write(e);
    await writer.close();
    const range = dayRange("2026-12-01", "2026-12-03")!;
    const keyOf: Record<(typeof REPORT_GROUPS)[number], (e: SpendLogEntry) => string | null> = {
      api_key: (e) => e.apiKey ?? null,
      model: (e) => e.model ?? null,
      provider: (e) => e.provider ?? null,
      end_user: (e) => e.endUser ?? null,
      day: (e) => new Date(e.startTime).toISOString().slice(0, 10),
    };
    for (const groupBy of REPORT_GROUPS) {
      const expected = new Map<
        string | null,
        { spend: number; requests: number; images: number }
      >();
      for (const e of entries) {
        const g = keyOf[groupBy](e);
        const sum = expected.get(g) ?? { spend: 0, requests: 0, images: 0 };
        sum.spend += e.spend;
        sum.requests += 1;
        sum.images += e.images;
        expected.set(g, sum);
      }
      const report = await spendReport(database, range, groupBy);
      expect(report.map((r) => r.group).sort()).toEqual([...expected.keys()].sort());
      for (const row of report) {
        const want = expected.get(row.group)!;
        expect(row.spend, `${groupBy} ${row.group}`).toBeCloseTo(want.spend, 9);
        expect(row.requests).toBe(want.requests);
        expect(row.images).toBe(want.images);
      }
      // Largest spend first.
      expect(report.map((r) => r.spend)).toEqual(report.map((r) => r.spend).sort((a, b) => b - a));
    }
    expect(await spendReport(database, dayRange("2027-01-01", "2027-01-01")!, "model")).toEqual([]);
  });

  it("prunes rows older than the retention", async () => {
    const database = await open();
    const writer = new SpendLogWriter(database);
    for (let i = 0; i < 60; i++) writer.write(entry(i));
    await writer.close();
    expect(await pruneSpendLogs(database, DEC_1 + DAY)).toBe(20);
    const left = await spendLogs(database, { from: 0, to: DEC_1 + 4 * DAY });
    expect(left).toHaveLength(40);
    expect(left.every((r) => Date.parse(r.startTime) >= DEC_1 + DAY)).toBe(true);
  });
});
