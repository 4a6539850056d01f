/**
 * The model catalog: per upstream model, what a client may send (sizes, n, qualities,
 * styles, prompt limits, GPT-image fields, provider extras), read from the per-provider files in `models/`.
 *
 * Naming: a `ModelSpec` keeps the YAML's snake_case keys, which are OpenAI's JSON request
 * names (https://platform.openai.com/docs/api-reference/images/create). So a spec key is
 * also the `param` of the 400 that rejects a value for it, with no translation table.
 *
 * A request field whose key an entry leaves out is unsupported for that model: the
 * validator rejects it rather than dropping it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { PROVIDERS } from "./providers.ts";
import { parseSize } from "./size.ts";

/** The request shape an adapter builds; a closed list so a typo fails at load, not at dispatch. */
export const FAMILIES = [
  "dalle",
  "gpt-image",
  "imagen",
  "gemini-image",
  "sdxl",
  "sd3",
  "titan",
  "nova",
  "recraft",
] as const;
export type Family = (typeof FAMILIES)[number];

/** Accepted request fields that carry no value domain: listing one admits it. */
export const FLAG_PARAMS = ["user", "safety_identifier", "stream"] as const;
export type FlagParam = (typeof FLAG_PARAMS)[number];

type Issues = z.core.$RefinementCtx;

function addIssue(ctx: Issues, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: "custom", path, message });
}

function quoteList(values: readonly (string | number)[]): string {
  return values.map((v) => `'${v}'`).join(", ");
}

/**
 * What the upstream is sent for a listed value where it spells it otherwise (an OpenAI size →
 * an aspect ratio or the upstream's own size, a quality → an image-size tier); a value
 * without an entry is sent as it is. Data the adapters read, beside the values it maps.
 */
const UpstreamMapSchema = z.record(z.string().min(1), z.string().min(1));

function checkUpstreamKeys(
  upstream: Readonly<Record<string, string>> | undefined,
  values: readonly string[],
  ctx: Issues,
): void {
  for (const value of Object.keys(upstream ?? {})) {
    if (!values.includes(value))
      addIssue(ctx, ["upstream", value], `'${value}' is not one of values`);
  }
}

/** Enumerated values a client may send; `default` is what the upstream does when it is unset. */
const EnumSpecSchema = z
  .strictObject({
    values: z.array(z.string().min(1)).min(1),
    default: z.string(),
    // Values the upstream treats as another (dall-e-3 takes `auto` as `standard`).
    same_as: z.record(z.string(), z.string()).optional(),
    // For a value, the values another listed field must then have (transparent → png|webp).
    requires: z.record(z.string(), z.record(z.string(), z.array(z.string()).min(1))).optional(),
    upstream: UpstreamMapSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    const known = new Set(spec.values);
    if (!known.has(spec.default)) {
      addIssue(
        ctx,
        ["default"],
        `'${spec.default}' is not one of values (${quoteList(spec.values)})`,
      );
    }
    for (const [from, to] of Object.entries(spec.same_as ?? {})) {
      if (!known.has(from)) addIssue(ctx, ["same_as", from], `'${from}' is not one of values`);
      if (!known.has(to)) addIssue(ctx, ["same_as", from], `'${to}' is not one of values`);
    }
    for (const value of Object.keys(spec.requires ?? {})) {
      if (!known.has(value)) addIssue(ctx, ["requires", value], `'${value}' is not one of values`);
    }
    checkUpstreamKeys(spec.upstream, spec.values, ctx);
  });

const rangeShape = { min: z.int(), max: z.int(), default: z.int().optional() };

function checkRange(
  range: { min: number; max: number; default?: number | undefined },
  ctx: Issues,
) {
  if (range.min > range.max) addIssue(ctx, ["min"], `min ${range.min} is above max ${range.max}`);
  if (range.default !== undefined && (range.default < range.min || range.default > range.max)) {
    addIssue(ctx, ["default"], `${range.default} is outside ${range.min}..${range.max}`);
  }
}

/** An inclusive integer range a client may send. */
const RangeSpecSchema = z.strictObject(rangeShape).superRefine(checkRange);

/** output_compression: a range, where values below `max` need one of `formats` as output_format. */
const CompressionSpecSchema = z
  .strictObject({ ...rangeShape, formats: z.array(z.string().min(1)).min(1) })
  .superRefine(checkRange);

/** Bounds that admit any `WxH`; ratio is width / height. */
const SizeRuleSchema = z.strictObject({
  multiple_of: z.int().positive().optional(),
  min_side: z.int().positive().optional(),
  max_side: z.int().positive().optional(),
  min_pixels: z.int().positive().optional(),
  max_pixels: z.int().positive().optional(),
  min_ratio: z.number().positive().optional(),
  max_ratio: z.number().positive().optional(),
});

const PixelsSchema = z.string().refine((s) => parseSize(s) !== undefined, "must be WIDTHxHEIGHT");
export const IMAGE_TIERS = ["1K", "2K", "4K"] as const;
export type ImageTier = (typeof IMAGE_TIERS)[number];

/**
 * Listed sizes (`auto`, `WxH`, or a provider's own spelling) and optionally a rule for any
 * WxH; `upstream` says what each listed size is sent as, and `produced` what the upstream
 * renders for an aspect ratio it is sent (one size, or one per image-size tier).
 */
const SizeSpecSchema = z
  .strictObject({
    values: z.array(z.string().min(1)).default([]),
    default: z.string().min(1),
    rule: SizeRuleSchema.optional(),
    upstream: UpstreamMapSchema.optional(),
    produced: z
      .record(
        z.string().min(1),
        z.union([PixelsSchema, z.partialRecord(z.enum(IMAGE_TIERS), PixelsSchema)]),
      )
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.values.length === 0 && spec.rule === undefined) {
      addIssue(ctx, ["values"], "a size needs values, a rule, or both");
    }
    // The default must be listed so every default is valid whatever the rule says.
    if (!spec.values.includes(spec.default)) {
      addIssue(
        ctx,
        ["default"],
        `'${spec.default}' is not one of values (${quoteList(spec.values)})`,
      );
    }
    checkUpstreamKeys(spec.upstream, spec.values, ctx);
    // Every aspect ratio a size is sent as renders to a known size.
    if (spec.produced !== undefined) {
      for (const [size, sent] of Object.entries(spec.upstream ?? {})) {
        if (spec.produced[sent] === undefined)
          addIssue(ctx, ["upstream", size], `'${sent}' has no produced size`);
      }
    }
  });

/** Fields that hold enumerated values; `requires` may only point at these. */
const ENUM_KEYS = [
  "quality",
  "style",
  "background",
  "moderation",
  "output_format",
  "aspect_ratio",
] as const;
export type EnumKey = (typeof ENUM_KEYS)[number];

export const RESPONSE_FORMATS = ["url", "b64_json"] as const;

/** Substyles a client may send, per `style` value (Recraft); a style absent here takes none. */
const SubstyleSpecSchema = z.strictObject({
  by_style: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)),
});

const IsoDateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date YYYY-MM-DD")
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)), "must be a real date");

/**
 * Where the provider says the model is in its life: when it was deprecated (announced for
 * retirement) and shut down (or will be), what it names as the successor (a model of the
 * same provider in this catalog), where that was read and when. Data read by the startup
 * warnings and the 404 a retired model's upstream answer becomes (lifecycle.ts).
 */
const LifecycleSpecSchema = z
  .strictObject({
    deprecated: IsoDateSchema.optional(),
    shutdown: IsoDateSchema.optional(),
    successor: z.string().min(1).optional(),
    /** The provider's page (or the best page found) that says so. */
    source: z.url(),
    /** When the source was read. */
    checked: IsoDateSchema,
    /** What the dates do not say: "no earlier than", a third-party date. */
    note: z.string().min(1).optional(),
  })
  .refine((l) => l.deprecated !== undefined || l.shutdown !== undefined, {
    message: "give `deprecated`, `shutdown` or both",
  });
/** Input image formats, as the gateway reads them from the bytes. */
export const INPUT_FORMATS = ["png", "jpeg", "webp"] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** The pixel sizes an input image may have (absent: any the byte limit allows). */
const InputDimensionsSchema = z.strictObject({
  min_side: z.int().positive().optional(),
  max_side: z.int().positive().optional(),
  max_pixels: z.int().positive().optional(),
});

/** What a model's edit API takes as input images (present: the model edits). */
const EditsSpecSchema = z.strictObject({
  /** Input images per request. */
  max_images: z.int().positive(),
  /** Bytes per input image (a file must be smaller than or equal to this). */
  max_image_bytes: z.int().positive(),
  formats: z.array(z.enum(INPUT_FORMATS)).min(1),
  /** Inputs must be square (dall-e-2). */
  square: z.boolean().default(false),
  /** A mask image is taken: its formats and byte limit; absent, `mask` is a 400. */
  mask: z
    .strictObject({
      formats: z.array(z.enum(INPUT_FORMATS)).min(1),
      max_bytes: z.int().positive(),
    })
    .optional(),
  /** `mask_prompt` (text naming what to edit) is taken. */
  mask_prompt: z.boolean().default(false),
  /** `strength` (0-1, image-to-image) is taken. */
  strength: z.boolean().default(false),
  /** The edit cannot run without `strength` (image-to-image): its absence is a 400. */
  strength_required: z.boolean().default(false),
  /** Pixel sizes each input image (and so the mask) may have. */
  dimensions: InputDimensionsSchema.optional(),
  /** `input_fidelity` values the model takes. */
  input_fidelity: EnumSpecSchema.optional(),
});

/** What a model's variations API takes (present: the model makes variations). */
const VariationsSpecSchema = z.strictObject({
  max_image_bytes: z.int().positive(),
  formats: z.array(z.enum(INPUT_FORMATS)).min(1),
  square: z.boolean().default(false),
  dimensions: InputDimensionsSchema.optional(),
});

/** One catalog entry; the zod schema is the single definition of what a catalog file may hold. */
export const ModelSpecSchema = z
  .strictObject({
    provider: z.enum(PROVIDERS),
    model: z.string().min(1),
    aliases: z.array(z.string().min(1)).default([]),
    family: z.enum(FAMILIES),
    prompt_max_chars: z.int().positive().optional(),
    n: RangeSpecSchema,
    upstream_max_n: z.int().positive(),
    size: SizeSpecSchema,
    quality: EnumSpecSchema.optional(),
    style: EnumSpecSchema.optional(),
    // Ignored: every model answers in both formats, the gateway converting (src/service/deliver.ts);
    // the default is `native_response`. Optional so catalog files that still list it load.
    native_response: z.enum(RESPONSE_FORMATS),
    background: EnumSpecSchema.optional(),
    moderation: EnumSpecSchema.optional(),
    output_format: EnumSpecSchema.optional(),
    output_compression: CompressionSpecSchema.optional(),
    partial_images: RangeSpecSchema.optional(),
    seed: RangeSpecSchema.optional(),
    aspect_ratio: EnumSpecSchema.optional(),
    substyle: SubstyleSpecSchema.optional(),
    negative_prompt: z.strictObject({ max_chars: z.int().positive().optional() }).optional(),
    params: z.array(z.enum(FLAG_PARAMS)).default([]),
    lifecycle: LifecycleSpecSchema.optional(),
    /** Whether the model makes images from a prompt alone (false: an edit-only model). */
    generates: z.boolean().default(true),
    /** Image edits (`POST /v1/images/edits`); absent: the model does not edit. */
    edits: EditsSpecSchema.optional(),
    /** Image variations (`POST /v1/images/variations`); absent: the model makes none. */
    variations: VariationsSpecSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.n.min < 1) addIssue(ctx, ["n", "min"], "n starts at 1");
    checkRequires(spec, ctx);
    const formats = spec.output_compression?.formats ?? [];
    for (const format of formats) {
      if (!spec.output_format?.values.includes(format)) {
        addIssue(
          ctx,
          ["output_compression", "formats"],
          `'${format}' is not an output_format value`,
        );
      }
    }
    for (const style of Object.keys(spec.substyle?.by_style ?? {})) {
      if (!spec.style?.values.includes(style)) {
        addIssue(ctx, ["substyle", "by_style", style], `'${style}' is not a style value`);
      }
    }
    for (const ratio of spec.size.produced === undefined ? [] : (spec.aspect_ratio?.values ?? [])) {
      if (spec.size.produced?.[ratio] === undefined)
        addIssue(ctx, ["aspect_ratio", "values"], `'${ratio}' has no size.produced entry`);
    }
    if (spec.partial_images && !spec.params.includes("stream")) {
      addIssue(ctx, ["partial_images"], "partial_images needs 'stream' in params");
    }
  });

/** Every `requires` must point at another enumerated field of the same entry, and at its values. */
function checkRequires(spec: z.output<typeof ModelSpecSchema>, ctx: Issues): void {
  for (const key of ENUM_KEYS) {
    for (const [value, needs] of Object.entries(spec[key]?.requires ?? {})) {
      for (const [other, allowed] of Object.entries(needs)) {
        const path = [key, "requires", value, other];
        const target = (ENUM_KEYS as readonly string[]).includes(other)
          ? spec[other as EnumKey]
          : undefined;
        if (target === undefined) {
          addIssue(ctx, path, `'${other}' is not an enumerated field of this entry`);
          continue;
        }
        for (const v of allowed) {
          if (!target.values.includes(v))
            addIssue(ctx, path, `'${v}' is not one of ${other}.values`);
        }
      }
    }
  }
}

const CatalogFileSchema = z.strictObject({ models: z.array(ModelSpecSchema) });

/** A catalog entry, keys as in the catalog files (snake_case, OpenAI's request names). */
export type ModelSpec = z.output<typeof ModelSpecSchema>;
/** What a catalog file (or a config override) writes for an entry, before defaults apply. */
export type ModelSpecInput = z.input<typeof ModelSpecSchema>;
export type EnumSpec = z.output<typeof EnumSpecSchema>;
export type RangeSpec = z.output<typeof RangeSpecSchema>;
export type CompressionSpec = z.output<typeof CompressionSpecSchema>;
export type SizeSpec = z.output<typeof SizeSpecSchema>;
export type SizeRule = z.output<typeof SizeRuleSchema>;
export type SubstyleSpec = z.output<typeof SubstyleSpecSchema>;
export type LifecycleSpec = z.output<typeof LifecycleSpecSchema>;
export type EditsSpec = z.output<typeof EditsSpecSchema>;
export type VariationsSpec = z.output<typeof VariationsSpecSchema>;

/**
 * Keys an override may change (provider and model name the entry, so they stay); an
 * object-valued key may be partial, as it merges into the entry's.
 */
export type ModelSpecOverrides = {
  [K in Exclude<keyof ModelSpecInput, "provider" | "model">]?: OverrideValue<ModelSpecInput[K]>;
};
type OverrideValue<T> = [NonNullable<T>] extends [readonly unknown[]]
  ? T
  : [NonNullable<T>] extends [object]
    ? Partial<NonNullable<T>>
    : T;

export interface Catalog {
  /** The entry for `model` (its id or an alias) at `provider`. */
  lookup(provider: string, model: string): ModelSpec | undefined;
  /** Every entry, in file order. */
  entries(): readonly ModelSpec[];
}

/** A catalog file or override that does not fit the schema; the message names entry and key. */
export class CatalogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CatalogError";
  }
}

/** The folder of per-provider catalog files. */
export const CATALOG_DIR = new URL("./models/", import.meta.url);

/**
 * Reads and checks every `*.yaml` in `models/` beside this file (or the one file `path`)
 * as one catalog; throws CatalogError naming the file, entry and key of a bad one.
 */
export function loadCatalog(path?: string | URL): Catalog {
  if (path !== undefined) return parseCatalog(readFileSync(path, "utf8"), String(path));
  const files = readdirSync(CATALOG_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const specs = files.flatMap((f) => parseSpecs(readFileSync(new URL(f, CATALOG_DIR), "utf8"), f));
  return buildCatalog(specs, "catalog");
}

/** Builds a catalog from one YAML text; `source` names the file in errors. */
export function parseCatalog(text: string, source = "models.yaml"): Catalog {
  return buildCatalog(parseSpecs(text, source), source);
}

function parseSpecs(text: string, source: string): ModelSpec[] {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new CatalogError(`Invalid model catalog ${source}: ${(e as Error).message}`);
  }
  const result = CatalogFileSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.flatMap((issue) => describeFileIssue(issue, raw));
    throw new CatalogError(`Invalid model catalog ${source}:\n  ${lines.join("\n  ")}`);
  }
  return result.data.models.map(deepFreeze);
}

function buildCatalog(specs: readonly ModelSpec[], source: string): Catalog {
  const byName = new Map<string, { spec: ModelSpec; index: number }>();
  specs.forEach((spec, index) => {
    for (const name of [spec.model, ...spec.aliases]) {
      const key = `${spec.provider}/${name}`;
      const taken = byName.get(key);
      if (taken) {
        const field = name === spec.model ? "model" : "aliases";
        throw new CatalogError(
          `Invalid model catalog ${source}:\n  entry ${index} (${spec.provider}/${spec.model}), ` +
            `key '${field}': '${name}' already names entry ${taken.index} ` +
            `(${taken.spec.provider}/${taken.spec.model})`,
        );
      }
      byName.set(key, { spec, index });
    }
  });
  specs.forEach((spec, index) => {
    const successor = spec.lifecycle?.successor;
    if (successor !== undefined && !byName.has(`${spec.provider}/${successor}`)) {
      throw new CatalogError(
        `Invalid model catalog ${source}:\n  entry ${index} (${spec.provider}/${spec.model}), ` +
          `key 'lifecycle.successor': '${successor}' is not a ${spec.provider} model of the catalog`,
      );
    }
  });
  return {
    lookup: (provider, model) => byName.get(`${provider}/${model}`)?.spec,
    entries: () => specs,
  };
}

/**
 * `spec` with `overrides` applied: each top-level key replaces the entry's, except that an
 * object merges key by key into the entry's object (so `{ n: { max: 4 } }` keeps `n.min`).
 * The result is checked against the schema again; throws CatalogError naming model and key.
 */
export function withOverrides(spec: ModelSpec, overrides: ModelSpecOverrides): ModelSpec {
  const merged: Record<string, unknown> = { ...spec };
  for (const [key, value] of Object.entries(overrides)) {
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value) ? { ...current, ...value } : value;
  }
  const result = ModelSpecSchema.safeParse(merged);
  if (!result.success) {
    const name = `${spec.provider}/${spec.model}`;
    const lines = result.error.issues.flatMap((issue) => describeIssue(issue.path, issue));
    throw new CatalogError(`Invalid override for ${name}:\n  ${lines.join("\n  ")}`);
  }
  return deepFreeze(result.data);
}

/** One line per problem: "entry 3 (openai/dall-e-3), key 'size.default': …". */
function describeFileIssue(issue: z.core.$ZodIssue, raw: unknown): string[] {
  const [top, index, ...rest] = issue.path;
  if (top !== "models" || typeof index !== "number") return describeIssue(issue.path, issue);
  const entry = (raw as { models: unknown[] }).models[index];
  const where = `entry ${index} (${entryName(entry)})`;
  return describeIssue(rest, issue).map(
    (line) => `${where}${line.startsWith("key") ? ", " : ": "}${line}`,
  );
}

function describeIssue(path: readonly PropertyKey[], issue: z.core.$ZodIssue): string[] {
  // Unknown keys come as one issue on the parent object; name each key as the culprit.
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => `key '${[...path, k].map(String).join(".")}': unknown key`);
  }
  return [
    path.length === 0 ? issue.message : `key '${path.map(String).join(".")}': ${issue.message}`,
  ];
}

function entryName(entry: unknown): string {
  if (!isPlainObject(entry)) return "not a mapping";
  const { provider, model } = entry;
  return `${typeof provider === "string" ? provider : "?"}/${typeof model === "string" ? model : "?"}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Entries are shared by every request; freezing them keeps one request from editing another's rules. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
