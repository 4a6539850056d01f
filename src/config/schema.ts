/**
 * The config file's schema (contract: "Config file (YAML)"). LiteLLM's image-model keys load
 * unchanged; keys LiteLLM knows that have no meaning for images are accepted and reported.
 */
import { z } from "zod";
import { ProviderParamsSchema } from "../providers/params.ts";

const positive = z.number().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** One deployment's `params` (alias `litellm_params`): the provider's (providers/params.ts) and routing's. */
export const DeploymentParamsSchema = z.strictObject({
  model: z
    .string()
    .min(1)
    .regex(/^[a-z_]+\/.+$/, "must be provider/upstream-model, e.g. openai/dall-e-3"),
  ...ProviderParamsSchema.shape,
  weight: positive.optional(),
  rpm: positive.optional(),
  tpm: positive.optional(),
  max_parallel_requests: z.number().int().positive().optional(),
  timeout: positive.optional(),
  order: z.number().int().positive().optional(),
});
export type DeploymentParams = z.infer<typeof DeploymentParamsSchema>;

const ModelInfoSchema = z.looseObject({
  id: z.string().min(1).optional(),
  output_cost_per_image: z.number().nonnegative().optional(),
  base_model: z.string().optional(),
});

const ModelEntrySchema = z
  .strictObject({
    model_name: z.string().min(1),
    params: DeploymentParamsSchema.optional(),
    litellm_params: DeploymentParamsSchema.optional(),
    model_info: ModelInfoSchema.optional(),
  })
  .refine((e) => (e.params === undefined) !== (e.litellm_params === undefined), {
    message: "give exactly one of `params` or `litellm_params`",
  });

const FallbackListSchema = z.array(z.record(z.string(), z.array(z.string())));

const RouterSettingsSchema = z.looseObject({
  routing_strategy: z
    .enum([
      "simple-shuffle",
      "least-busy",
      "latency-based-routing",
      "usage-based-routing",
      "usage-based-routing-v2",
    ])
    .optional(),
  num_retries: nonNegativeInt.optional(),
  timeout: positive.optional(),
  allowed_fails: nonNegativeInt.optional(),
  cooldown_time: z.number().nonnegative().optional(),
  fallbacks: FallbackListSchema.optional(),
  content_policy_fallbacks: FallbackListSchema.optional(),
  default_fallbacks: z.array(z.string()).optional(),
  max_fallbacks: nonNegativeInt.optional(),
  /**
   * LiteLLM's public-name aliases: `{alias: target}` or `{alias: {model: target, hidden: true}}`
   * (hidden: served, but not listed by GET /v1/models).
   */
  model_group_alias: z
    .record(
      z.string().min(1),
      z.union([
        z.string().min(1),
        z.strictObject({ model: z.string().min(1), hidden: z.boolean().optional() }),
      ]),
    )
    .optional(),
  /** Retries per error class, LiteLLM's names; a class not listed uses num_retries. */
  retry_policy: z
    .strictObject({
      RateLimitErrorRetries: nonNegativeInt.optional(),
      TimeoutErrorRetries: nonNegativeInt.optional(),
      InternalServerErrorRetries: nonNegativeInt.optional(),
      AuthenticationErrorRetries: nonNegativeInt.optional(),
      BadRequestErrorRetries: nonNegativeInt.optional(),
      ContentPolicyViolationErrorRetries: nonNegativeInt.optional(),
    })
    .optional(),
  /** latency-based-routing: deployments within this fraction of the fastest share load. */
  lowest_latency_buffer: z.number().nonnegative().optional(),
  /** The longest a retry waits on an upstream's Retry-After hint, in seconds. */
  max_retry_wait: z.number().nonnegative().optional(),
  /** Redis shared by replicas (config/redis.ts); or LiteLLM's host/port/password/db keys. */
  redis_url: z.string().min(1).optional(),
  redis_host: z.string().min(1).optional(),
  redis_port: z.number().int().min(1).max(65535).optional(),
  redis_password: z.string().min(1).optional(),
  redis_db: nonNegativeInt.optional(),
});

const ServerSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  public_url: z.url().optional(),
  tls: z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) }).optional(),
  max_body_bytes: z.number().int().positive().optional(),
  /** The largest edit or variation body (multipart, JSON or RPC), images included. */
  max_upload_bytes: z.number().int().positive().optional(),
  /** Image requests served at once; more wait in a bounded queue. */
  max_concurrent_requests: z.number().int().positive().optional(),
  /** Requests that may wait for a slot; past it the answer is 429 with Retry-After. */
  max_queued_requests: z.number().int().nonnegative().optional(),
  /** Seconds a client has to send its request body once it is admitted (slow clients are cut off). */
  client_timeout: positive.optional(),
  /** Seconds a new connection has to send its first bytes and a request its headers. */
  headers_timeout: positive.optional(),
  /** Seconds an idle connection (HTTP/1.1 keep-alive, HTTP/2 without streams) stays open. */
  keep_alive_timeout: positive.optional(),
  /** Seconds an answer may wait on a client that does not read it before the exchange is cut. */
  write_timeout: positive.optional(),
  /** Open client connections; past it new connections are closed at once. */
  max_connections: z.number().int().positive().optional(),
  /** Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  max_streams_per_connection: z.number().int().positive().optional(),
});

const GeneralSettingsSchema = z.looseObject({
  master_key: z.string().min(1).optional(),
  /** The model of requests that name none (default `openai/dall-e-3`, the contract's). */
  default_model: z.string().min(1).optional(),
  rehost_urls: z.boolean().optional(),
  /** Record prompts on spans and request logs (off: prompts may be personal data). */
  capture_prompts: z.boolean().optional(),
  /** The embedded database (SQLite file; `:memory:` forgets on restart); default in the user's data directory. */
  spend_db: z.string().min(1).optional(),
  /** `postgresql://…`: keys, spend and the spend log in Postgres, shared by replicas (env DATABASE_URL). */
  database_url: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL")
    .optional(),
  /** LiteLLM's name: serve budgeted keys (budget unchecked, spend journaled) while the database is down. */
  allow_requests_on_db_unavailable: z.boolean().optional(),
  /** Where spend waiting for the database is journaled (database_url); default: the data directory's `journal`. */
  spend_journal_dir: z.string().min(1).optional(),
  // Image URLs the gateway hands out (src/store/): the HMAC key, and where provider URLs may be fetched from.
  url_signing_key: z.string().min(16, "must be at least 16 characters").optional(),
  allowed_image_hosts: z.array(z.string().min(1)).optional(),
  image_download_max_bytes: z.number().int().positive().optional(),
  image_download_timeout_seconds: positive.optional(),
  /** How long spend-log rows are kept (`30d`, `24h`, …); older ones are pruned in the background. */
  spend_logs_retention: z
    .string()
    .regex(/^[1-9]\d*[smhd]$/, "must be a duration such as 30d, 24h, 10m or 30s")
    .optional(),
});

/** `storage:`: where images the gateway serves itself are kept (src/store/). */
const StorageSchema = z
  .strictObject({
    backend: z.enum(["local", "s3"]).optional(),
    dir: z.string().min(1).optional(),
    ttl_seconds: z.number().int().positive().optional(),
    max_bytes: z.number().int().positive().optional(),
    sweep_interval_seconds: positive.optional(),
    s3: z
      .strictObject({
        bucket: z.string().min(1),
        prefix: z.string().optional(),
        endpoint: z.url().optional(),
        region: z.string().min(1).optional(),
        force_path_style: z.boolean().optional(),
        access_key_id: z.string().min(1).optional(),
        secret_access_key: z.string().min(1).optional(),
        session_token: z.string().min(1).optional(),
        presigned_urls: z.boolean().optional(),
      })
      .refine((s) => (s.access_key_id === undefined) === (s.secret_access_key === undefined), {
        message:
          "give both `access_key_id` and `secret_access_key`, or neither (the AWS default chain)",
      })
      .optional(),
  })
  .refine((s) => s.backend !== "s3" || s.s3 !== undefined, {
    message: "`backend: s3` needs an `s3:` section with at least `bucket`",
    path: ["s3"],
  });

const KeySchema = z
  .strictObject({
    key_sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, "must be 64 hex characters")
      .optional(),
    key: z.string().min(1).optional(),
    name: z.string().min(1),
    models: z.array(z.string()).optional(),
    rpm_limit: positive.optional(),
    max_budget: z.number().nonnegative().optional(),
  })
  .refine((k) => (k.key_sha256 === undefined) !== (k.key === undefined), {
    message: "give exactly one of `key_sha256` or `key`",
  });

export const ConfigFileSchema = z.looseObject({
  model_list: z.array(ModelEntrySchema).nullish(),
  router_settings: RouterSettingsSchema.optional(),
  general_settings: GeneralSettingsSchema.optional(),
  server: ServerSchema.optional(),
  keys: z.array(KeySchema).optional(),
  storage: StorageSchema.optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type RouterSettings = z.infer<typeof RouterSettingsSchema>;
export type KeyConfig = z.infer<typeof KeySchema>;

/** Top-level sections of a LiteLLM config that imagegate reads nothing from. */
export const IGNORED_SECTIONS = ["litellm_settings", "environment_variables", "callback_settings"];
/** Deployment params LiteLLM users write that have no effect here. */
export const IGNORED_PARAMS = ["tpm"];
