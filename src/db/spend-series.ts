/**
 * The spend log as time series (`/global/spend/series`, the console's charts): requests,
 * images, failures and spend per UTC hour or day, in total or per model or key. Summed by
 * the database (GROUP BY on the bucket's start, an integer division of the epoch-ms start
 * time that SQLite and PostgreSQL compute alike), never by reading rows into JavaScript.
 */
import { type SqlBool, sql } from "kysely";
import type { Database } from "./database.ts";
import type { TimeRange } from "./spend-log.ts";

export const SERIES_BUCKETS = { hour: 3_600_000, day: 86_400_000 } as const;
export type SeriesBucket = keyof typeof SERIES_BUCKETS;
export const SERIES_GROUPS = ["model", "api_key"] as const;
export type SeriesGroup = (typeof SERIES_GROUPS)[number];

export interface SeriesPoint {
  /** The bucket's start, epoch ms. */
  start: number;
  /** The model or key token; null in totals or where rows have none. */
  group: string | null;
  /** The key's alias (grouped by key). */
  keyAlias: string | null;
  requests: number;
  images: number;
  errors: number;
  spend: number;
}

/** Points of a time range, oldest bucket first, then by group; empty buckets absent. */
export async function spendSeries(
  database: Database,
  range: TimeRange,
  bucket: SeriesBucket,
  groupBy: SeriesGroup | undefined,
): Promise<SeriesPoint[]> {
  const width = SERIES_BUCKETS[bucket];
  const group = groupBy === undefined ? sql<null>`null` : sql<string | null>`${sql.ref(groupBy)}`;
  const alias = groupBy === "api_key" ? sql<string | null>`max(key_alias)` : sql<null>`null`;
  const rows = await database.db
    .selectFrom("spend_logs")
    .select([
      // A literal width: a bound parameter would make PostgreSQL divide as numeric.
      sql<number>`(start_time / ${sql.lit(width)}) * ${sql.lit(width)}`.as("bucket"),
      group.as("grp"),
      alias.as("alias"),
      sql<number>`count(*)`.as("requests"),
      sql<number>`coalesce(sum(images), 0)`.as("images"),
      sql<number>`sum(case when status = 'failure' then 1 else 0 end)`.as("errors"),
      sql<number>`coalesce(sum(spend), 0)`.as("spend"),
    ])
    .where(sql<SqlBool>`start_time >= ${range.from} and start_time < ${range.to}`)
    // Grouping by a constant (the totals' null group) is not something PostgreSQL takes.
    .groupBy(groupBy === undefined ? [sql`1`] : [sql`1`, sql`2`])
    .orderBy(sql`1`)
    .orderBy(sql`2`)
    .execute();
  return rows.map((r) => ({
    start: Number(r.bucket),
    group: r.grp as string | null,
    keyAlias: r.alias as string | null,
    requests: Number(r.requests),
    images: Number(r.images),
    errors: Number(r.errors),
    spend: Number(r.spend),
  }));
}
