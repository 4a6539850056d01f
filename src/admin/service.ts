/**
 * imagegate.admin.v1.AdminService: LiteLLM's management routes (`/key/*`, `/spend/logs`,
 * `/global/spend/report`, `/model/info`) over gRPC, Connect and REST, one implementation.
 * Only the master key reaches it (`adminInterceptor`). Every change is an audit record in
 * the log (who, what, which key by its token; never a key), and is applied to the key ring
 * at once (`ApiKeySync.refresh`) before the answer goes out.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { ListValue } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import { type ApiKeySync, keyName } from "./api-keys.ts";
import { MASTER_KEY_NAME } from "../auth/keys.ts";
import { kCallInfo } from "../call/call-info.ts";
import { sha256Hex } from "../config/keys.ts";
import type { Database } from "../db/database.ts";
import { type KeyFields, type KeyRecord, type KeysRepository, parseDuration } from "../db/keys.ts";
import {
  dayRange,
  REPORT_GROUPS,
  type ReportGroup,
  type SpendLogWriter,
  spendLogs,
  spendReport,
  type TimeRange,
} from "../db/spend-log.ts";
import {
  SERIES_BUCKETS,
  SERIES_GROUPS,
  type SeriesBucket,
  type SeriesGroup,
  spendSeries,
} from "../db/spend-series.ts";
import { GatewayError, invalidParam } from "../errors/errors.ts";
import {
  type AdminService,
  DeleteKeysResponseSchema,
  GenerateKeyResponseSchema,
  GetKeyInfoResponseSchema,
  GetSpendReportResponseSchema,
  GetSpendSeriesResponseSchema,
  KeyInfoSchema,
  KeyResponseSchema,
  ListKeysResponseSchema,
  ListSpendLogsResponseSchema,
  SpendGroupSchema,
  SpendLogSchema,
  SpendPointSchema,
} from "../gen/imagegate/admin/v1/admin_pb.js";
import type { Logger } from "../log/logger.ts";
import type { ModelInfoSource } from "./model-info.ts";
import { modelInfo } from "./model-info.ts";
import { type ModelStatsSource, modelStats } from "./model-stats.ts";

export interface AdminDeps {
  database: Database;
  keys: KeysRepository;
  sync: ApiKeySync;
  /** The spend log's writer (flushed before a read, so a report sees every answered request). */
  spendLog: SpendLogWriter | undefined;
  models: ModelInfoSource & ModelStatsSource;
  logger: Logger;
  now?: () => number;
}

const TOKEN = /^[0-9a-f]{64}$/;

export function createAdminService(deps: AdminDeps): ServiceImpl<typeof AdminService> {
  const now = deps.now ?? Date.now;
  const { keys, sync } = deps;

  /** An audit record: who (the caller's key name), what, which key (its token). */
  const audit = (ctx: HandlerContext, action: string, record: KeyRecord) => {
    deps.logger.log("info", `admin ${action}`, {
      audit: true,
      who: ctx.values.get(kKey)?.name ?? MASTER_KEY_NAME,
      action,
      token: record.token,
      key_name: keyName(record),
      request_id: ctx.values.get(kCallInfo)?.requestId,
    });
  };

  /** The token a body's `key` names (the key itself or its token); 404 if no key has it. */
  const find = async (value: string, param = "key"): Promise<KeyRecord> => {
    if (value === "") throw invalidParam(param, `Missing required parameter: '${param}'.`);
    const record =
      (TOKEN.test(value) ? await keys.get(value) : undefined) ?? (await keys.get(sha256Hex(value)));
    if (record === undefined) throw keyNotFound(param);
    return record;
  };

  /** A key the API may change: 403 for one from the config file. */
  const changeable = async (value: string, param = "key"): Promise<KeyRecord> => {
    const record = await find(value, param);
    if (record.source === "config") {
      throw new GatewayError(
        "permission",
        `Key '${keyName(record)}' comes from the config file and cannot be changed through the API; change it in the config file.`,
        { param, code: "config_key_read_only" },
      );
    }
    return record;
  };

  const newKey = () => `sk-${randomBytes(32).toString("base64url")}`;

  return {
    async generateKey(req, ctx) {
      const fields = keyFields(req, now());
      if (req.models.length > 0) fields.models = checkModels(req.models);
      const key = newKey();
      const record = await keys.create(sha256Hex(key), fields);
      await sync.refresh();
      audit(ctx, "key.generate", record);
      return create(GenerateKeyResponseSchema, { key, ...keyShape(record) });
    },

    async updateKey(req, ctx) {
      const current = await changeable(req.key);
      const fields = keyFields(req, now());
      if (req.models !== undefined) fields.models = modelsOf(req.models);
      const record = await keys.update(current.token, fields);
      if (record === undefined) throw keyNotFound("key");
      await sync.refresh();
      audit(ctx, "key.update", record);
      return keyResponse(record);
    },

    async deleteKeys(req, ctx) {
      if (req.keys.length === 0) throw invalidParam("keys", "'keys' must name at least one key.");
      const records: KeyRecord[] = [];
      for (const [i, value] of req.keys.entries())
        records.push(await changeable(value, `keys[${i}]`));
      const deleted = await keys.delete(records.map((r) => r.token));
      await sync.refresh();
      for (const r of records) if (deleted.includes(r.token)) audit(ctx, "key.delete", r);
      return create(DeleteKeysResponseSchema, { deletedKeys: deleted });
    },

    async regenerateKey(req, ctx) {
      const current = await changeable(req.key);
      const key = newKey();
      const record = await keys.regenerate(current.token, sha256Hex(key));
      if (record === undefined) throw keyNotFound("key");
      await sync.refresh();
      // The old token names the key in the record; the new one is in the next records.
      audit(ctx, "key.regenerate", current);
      return create(GenerateKeyResponseSchema, { key, ...keyShape(record) });
    },

    async blockKey(req, ctx) {
      const current = await changeable(req.key);
      const record = await keys.setBlocked(current.token, true);
      if (record === undefined) throw keyNotFound("key");
      await sync.refresh();
      audit(ctx, "key.block", record);
      return keyResponse(record);
    },

    async unblockKey(req, ctx) {
      const current = await changeable(req.key);
      const record = await keys.setBlocked(current.token, false);
      if (record === undefined) throw keyNotFound("key");
      await sync.refresh();
      audit(ctx, "key.unblock", record);
      return keyResponse(record);
    },

    async getKeyInfo(req) {
      const { token } = await find(req.key);
      const info = await keys.info(token);
      if (info === undefined) throw keyNotFound("key");
      return create(GetKeyInfoResponseSchema, {
        key: token,
        info: create(KeyInfoSchema, {
          ...keyShape(info),
          spend: info.spend,
          blocked: info.blocked,
          budgetResetAt: iso(info.budgetResetAt),
          createdAt: new Date(info.createdAt).toISOString(),
          source: info.source,
          metadata: info.metadata as never,
        }),
      });
    },

    async listKeys(req) {
      return create(ListKeysResponseSchema, {
        keys: await keys.list(req.keyAlias === undefined ? {} : { alias: req.keyAlias }),
      });
    },

    async listSpendLogs(req) {
      const range = rangeOf(req.startDate, req.endDate);
      await deps.spendLog?.flush();
      const rows = await spendLogs(deps.database, {
        ...range,
        apiKey: req.apiKey === undefined ? undefined : tokenOf(req.apiKey),
        model: req.model,
        endUser: req.endUser,
        requestId: req.requestId,
        status: statusOf(req.status),
        limit: limitOf(req.limit),
      });
      return create(ListSpendLogsResponseSchema, {
        logs: rows.map((r) =>
          create(SpendLogSchema, {
            requestId: r.request_id,
            apiKey: r.api_key ?? undefined,
            keyAlias: r.key_alias ?? undefined,
            endUser: r.end_user ?? undefined,
            model: r.model ?? undefined,
            modelId: r.model_id ?? undefined,
            provider: r.provider ?? undefined,
            status: r.status,
            spend: r.spend,
            images: r.images,
            size: r.size ?? undefined,
            quality: r.quality ?? undefined,
            startTime: r.startTime,
            endTime: r.endTime,
            attempts: r.attempts,
            attemptLog: r.attempt_log,
          }),
        ),
      });
    },

    async getSpendReport(req) {
      const range = rangeOf(req.startDate, req.endDate);
      const groupBy = req.groupBy ?? "api_key";
      if (!(REPORT_GROUPS as readonly string[]).includes(groupBy)) {
        throw invalidParam(
          "group_by",
          `Invalid 'group_by': '${groupBy}'; use one of ${REPORT_GROUPS.join(", ")}.`,
        );
      }
      await deps.spendLog?.flush();
      const rows = await spendReport(deps.database, range, groupBy as ReportGroup);
      return create(GetSpendReportResponseSchema, {
        groups: rows.map((r) =>
          create(SpendGroupSchema, {
            group: r.group ?? undefined,
            spend: r.spend,
            requests: r.requests,
            images: r.images,
          }),
        ),
      });
    },

    async getSpendSeries(req) {
      const range = rangeOf(req.startDate, req.endDate);
      const bucket = req.bucket ?? "day";
      if (!Object.hasOwn(SERIES_BUCKETS, bucket)) {
        throw invalidParam(
          "bucket",
          `Invalid 'bucket': '${bucket}'; use one of ${Object.keys(SERIES_BUCKETS).join(", ")}.`,
        );
      }
      if (
        req.groupBy !== undefined &&
        !(SERIES_GROUPS as readonly string[]).includes(req.groupBy)
      ) {
        throw invalidParam(
          "group_by",
          `Invalid 'group_by': '${req.groupBy}'; use one of ${SERIES_GROUPS.join(", ")}, or leave it out for totals.`,
        );
      }
      await deps.spendLog?.flush();
      const points = await spendSeries(
        deps.database,
        range,
        bucket as SeriesBucket,
        req.groupBy as SeriesGroup | undefined,
      );
      return create(GetSpendSeriesResponseSchema, {
        bucket,
        points: points.map((p) =>
          create(SpendPointSchema, {
            start: new Date(p.start).toISOString(),
            group: p.group ?? undefined,
            keyAlias: p.keyAlias ?? undefined,
            requests: p.requests,
            images: p.images,
            errors: p.errors,
            spend: p.spend,
          }),
        ),
      });
    },

    getModelInfo() {
      return modelInfo(deps.models);
    },

    getModelStats() {
      return modelStats(deps.models);
    },
  };
}

function keyNotFound(param: string): GatewayError {
  return new GatewayError("not_found", `No key matches '${param}'.`, {
    param,
    code: "key_not_found",
  });
}

/** `/spend/logs`' `status` filter. */
function statusOf(status: string | undefined): "success" | "failure" | undefined {
  if (status === undefined || status === "success" || status === "failure") return status;
  throw invalidParam("status", `Invalid 'status': '${status}'; use success or failure.`);
}

/** `/spend/logs`' `limit`: 1 or more. */
function limitOf(limit: number | undefined): number | undefined {
  if (limit !== undefined && limit < 1)
    throw invalidParam("limit", `Invalid 'limit': expected a value >= 1, but got ${limit}.`);
  return limit;
}

/** A request's `api_key` filter: a token as is, a key as its token. */
function tokenOf(value: string): string {
  return TOKEN.test(value) ? value : sha256Hex(value);
}

/** Both dates (UTC days, both included) or neither (every row kept). */
function rangeOf(start: string | undefined, end: string | undefined): TimeRange {
  if (start === undefined && end === undefined) return { from: 0, to: Number.MAX_SAFE_INTEGER };
  if (start === undefined || end === undefined) {
    const missing = start === undefined ? "start_date" : "end_date";
    throw invalidParam(
      missing,
      `Missing '${missing}': give both start_date and end_date, or neither.`,
    );
  }
  const range = dayRange(start, end);
  if (range === undefined) {
    const bad = dayRange(start, start) === undefined ? "start_date" : "end_date";
    throw invalidParam(
      bad,
      dayRange(end, end) === undefined || bad === "start_date"
        ? `Invalid '${bad}': expected a date as YYYY-MM-DD.`
        : "Invalid 'end_date': it is before start_date.",
    );
  }
  return range;
}

interface CommonFields {
  keyAlias?: string;
  rpmLimit?: number;
  maxBudget?: number;
  budgetDuration?: string;
  duration?: string;
  metadata?: unknown;
}

/** The fields `generate` and `update` share, checked: 400 naming the field at fault. */
function keyFields(req: CommonFields, now: number): KeyFields {
  const fields: KeyFields = {};
  if (req.keyAlias !== undefined) {
    if (req.keyAlias === "") throw invalidParam("key_alias", "Invalid 'key_alias': it is empty.");
    if (req.keyAlias === MASTER_KEY_NAME) {
      throw invalidParam(
        "key_alias",
        `Invalid 'key_alias': '${MASTER_KEY_NAME}' is the master key's name in logs and metrics.`,
      );
    }
    fields.keyAlias = req.keyAlias;
  }
  if (req.rpmLimit !== undefined) {
    if (req.rpmLimit <= 0)
      throw invalidParam(
        "rpm_limit",
        `Invalid 'rpm_limit': expected a value >= 1, but got ${req.rpmLimit}.`,
      );
    fields.rpmLimit = req.rpmLimit;
  }
  if (req.maxBudget !== undefined) {
    if (!Number.isFinite(req.maxBudget) || req.maxBudget < 0) {
      throw invalidParam(
        "max_budget",
        `Invalid 'max_budget': expected a value >= 0, but got ${req.maxBudget}.`,
      );
    }
    fields.maxBudget = req.maxBudget;
  }
  if (req.budgetDuration !== undefined) {
    durationOf(req.budgetDuration, "budget_duration");
    fields.budgetDuration = req.budgetDuration;
  }
  if (req.duration !== undefined) fields.expires = now + durationOf(req.duration, "duration");
  if (req.metadata !== undefined) fields.metadata = req.metadata as Record<string, unknown>;
  return fields;
}

function durationOf(text: string, param: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw invalidParam(
      param,
      `Invalid '${param}': '${text}' is not a duration; use a number and s, m, h or d, such as 30s, 10m, 24h or 30d.`,
    );
  }
  return ms;
}

function checkModels(models: readonly string[]): string[] {
  for (const [i, m] of models.entries())
    if (m === "") throw invalidParam(`models[${i}]`, `Invalid 'models[${i}]': it is empty.`);
  return [...models];
}

/** `update`'s models: a list of names; `[]` (every model) clears the list. */
function modelsOf(list: ListValue): string[] | null {
  const names = list.values.map((v, i) => {
    if (v.kind.case !== "stringValue") {
      throw invalidParam(`models[${i}]`, `Invalid type for 'models[${i}]': expected a string.`);
    }
    return v.kind.value;
  });
  return names.length === 0 ? null : checkModels(names);
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function keyShape(record: KeyRecord) {
  return {
    token: record.token,
    keyAlias: record.keyAlias,
    expires: iso(record.expires),
    models: record.models ?? [],
    rpmLimit: record.rpmLimit,
    maxBudget: record.maxBudget,
    budgetDuration: record.budgetDuration,
  };
}

function keyResponse(record: KeyRecord) {
  return create(KeyResponseSchema, {
    ...keyShape(record),
    budgetResetAt: iso(record.budgetResetAt),
    blocked: record.blocked,
  });
}
