/**
 * Request validation driven by the catalog: a request is checked against its model's
 * `ModelSpec` before any provider sees it. The rules follow OpenAI's images API
 * (https://platform.openai.com/docs/api-reference/images/create) and its 400s, which name
 * the field in `param`. Nothing here knows a model: every limit comes from the spec.
 */
import { invalidParam } from "../errors/errors.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import { own } from "../runtime/own.ts";
import {
  type EnumKey,
  type EnumSpec,
  FLAG_PARAMS,
  type FlagParam,
  type ModelSpec,
  type RangeSpec,
  RESPONSE_FORMATS,
  type SizeRule,
} from "./catalog.ts";
import { parseSize } from "./size.ts";

type Value = string | number | boolean | undefined;

/** Every optional request field by OpenAI's JSON name (the spec key and the 400's `param`). */
const FIELDS = {
  n: (r) => r.n,
  size: (r) => r.size,
  quality: (r) => r.quality,
  style: (r) => r.style,
  response_format: (r) => r.responseFormat,
  background: (r) => r.background,
  moderation: (r) => r.moderation,
  output_format: (r) => r.outputFormat,
  output_compression: (r) => r.outputCompression,
  partial_images: (r) => r.partialImages,
  seed: (r) => r.seed,
  aspect_ratio: (r) => r.aspectRatio,
  substyle: (r) => r.substyle,
  negative_prompt: (r) => r.negativePrompt,
  user: (r) => r.user,
  safety_identifier: (r) => r.safetyIdentifier,
} satisfies Record<string, (r: CreateImageRequest) => Value>;

type Param = keyof typeof FIELDS;

const ENUM_FIELDS = {
  quality: (r) => r.quality,
  style: (r) => r.style,
  background: (r) => r.background,
  moderation: (r) => r.moderation,
  output_format: (r) => r.outputFormat,
  aspect_ratio: (r) => r.aspectRatio,
} satisfies Record<EnumKey, (r: CreateImageRequest) => string | undefined>;

const RANGE_FIELDS = {
  output_compression: (r) => r.outputCompression,
  partial_images: (r) => r.partialImages,
  seed: (r) => r.seed,
} satisfies Record<string, (r: CreateImageRequest) => number | undefined>;

// The tables as entries, once: they are walked for every request.
const FIELD_ENTRIES = entriesOf(FIELDS);
const ENUM_ENTRIES = entriesOf(ENUM_FIELDS);
const RANGE_ENTRIES = entriesOf(RANGE_FIELDS);

/**
 * Throws a 400 (`invalidParam`) naming the first field `req` gets wrong for `spec`;
 * `modelName` is the name the messages use. A variation (`operation`) has no prompt.
 */
export function validateRequest(
  req: CreateImageRequest,
  spec: ModelSpec,
  modelName: string,
  operation?: "edit" | "variation",
): void {
  if (operation === undefined && !spec.generates) {
    throw invalidParam(
      "model",
      `The model '${modelName}' only edits images: send it to /v1/images/edits.`,
      "model_not_supported",
    );
  }
  if (operation !== "variation") checkPrompt(req.prompt, spec, modelName);
  checkListed(req, spec, modelName);
  if (req.n !== undefined) checkRange("n", req.n, spec.n, modelName);
  if (req.size !== undefined) checkSize(req.size, spec, modelName);
  checkEnums(req, spec, modelName);
  checkRanges(req, spec, modelName);
  checkRequires(req, spec);
  checkCompressionFormat(req, spec);
  checkPartialImages(req);
  checkSizeOrAspectRatio(req);
  if (req.substyle !== undefined) checkSubstyle(req.substyle, req.style, spec, modelName);
  if (req.negativePrompt !== undefined) {
    checkLength("negative_prompt", req.negativePrompt, spec.negative_prompt?.max_chars, modelName);
  }
}

/** The values a request will actually get: what it sent, else the model's default. */
export interface ResolvedParams {
  n: number;
  /** `auto` stays `auto` where the model takes it (GPT image decides the size itself). */
  size: string;
  /** Undefined when the model has no quality setting. */
  quality: string | undefined;
  responseFormat: string;
  style: string | undefined;
  background: string | undefined;
  outputFormat: string | undefined;
}

/** Fills unset fields with the model's defaults, mapping values the model treats as another (`same_as`). */
export function resolveDefaults(req: CreateImageRequest, spec: ModelSpec): ResolvedParams {
  return {
    n: req.n ?? spec.n.default ?? 1,
    size: req.size ?? spec.size.default,
    quality: effective(req.quality, spec.quality),
    responseFormat: req.responseFormat ?? spec.native_response,
    style: effective(req.style, spec.style),
    background: effective(req.background, spec.background),
    outputFormat: effective(req.outputFormat, spec.output_format),
  };
}

function effective(value: string | undefined, spec: EnumSpec | undefined): string | undefined {
  if (spec === undefined) return undefined;
  const chosen = value ?? spec.default;
  const alias = spec.same_as;
  return alias && Object.hasOwn(alias, chosen) ? alias[chosen] : chosen;
}

function checkPrompt(prompt: string | undefined, spec: ModelSpec, model: string): void {
  if (prompt === undefined) throw invalidParam("prompt", "Missing required parameter: 'prompt'.");
  if (prompt.length === 0) {
    throw invalidParam("prompt", "Invalid 'prompt': empty string. Expected a non-empty prompt.");
  }
  checkLength("prompt", prompt, spec.prompt_max_chars, model);
}

function checkLength(param: string, text: string, max: number | undefined, model: string): void {
  if (max === undefined || text.length <= max) return; // UTF-16 units never undercount characters
  const length = characterCount(text);
  if (length > max) {
    throw invalidParam(
      param,
      `Invalid '${param}': it is too long: ${length} characters; the maximum for ${model} is ${max}.`,
    );
  }
}

/** Characters as Unicode code points, so an emoji counts once rather than as two UTF-16 units. */
function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A field the entry does not list is unsupported for the model: rejected, never dropped. */
function checkListed(req: CreateImageRequest, spec: ModelSpec, model: string): void {
  for (const [param, read] of FIELD_ENTRIES) {
    if (read(req) !== undefined && !isListed(spec, param)) {
      throw invalidParam(
        param,
        `Unsupported parameter: '${param}' is not supported with ${model}.`,
      );
    }
  }
}

function isListed(spec: ModelSpec, param: Param): boolean {
  if (param === "response_format") return true; // every model, whatever the catalog lists
  if ((FLAG_PARAMS as readonly string[]).includes(param))
    return (spec.params as readonly string[]).includes(param);
  return spec[param as Exclude<Param, FlagParam | "response_format">] !== undefined;
}

function checkEnums(req: CreateImageRequest, spec: ModelSpec, model: string): void {
  for (const [key, read] of ENUM_ENTRIES) {
    const value = read(req);
    const enumSpec = spec[key];
    if (value !== undefined && enumSpec) checkEnum(key, value, enumSpec, model);
  }
  // `response_format` is the gateway's, not the model's: `url` and `b64_json` for every
  // model (it stores bytes and fetches URLs), defaulting to what the upstream returns.
  if (req.responseFormat !== undefined) {
    checkEnum(
      "response_format",
      req.responseFormat,
      { values: [...RESPONSE_FORMATS], default: spec.native_response },
      model,
    );
  }
}

function checkRanges(req: CreateImageRequest, spec: ModelSpec, model: string): void {
  for (const [key, read] of RANGE_ENTRIES) {
    const value = read(req);
    const range = spec[key];
    if (value !== undefined && range) checkRange(key, value, range, model);
  }
}

function checkRange(param: string, value: number, range: RangeSpec, model: string): void {
  if (Number.isInteger(value) && value >= range.min && value <= range.max) return;
  const allowed =
    range.min === range.max ? `only ${range.min}` : `an integer from ${range.min} to ${range.max}`;
  throw invalidParam(
    param,
    `Invalid value for '${param}': ${value}. For ${model}, '${param}' must be ${allowed}.`,
  );
}

function checkEnum(param: string, value: string, spec: EnumSpec, model: string): void {
  if (!spec.values.includes(value)) {
    throw invalidParam(
      param,
      `Invalid value: '${value}'. Supported values for ${model} are: ${quoteList(spec.values)}.`,
    );
  }
}

function checkSize(size: string, spec: ModelSpec, model: string): void {
  const { values, rule } = spec.size;
  if (values.includes(size)) return;
  const listed = `Supported values for ${model} are: ${quoteList(values)}`;
  if (rule === undefined) throw invalidParam("size", `Invalid value: '${size}'. ${listed}.`);
  const supported = `${listed}${values.length > 0 ? ", or" : ""} ${describeRule(rule)}`;
  const dims = parseSize(size);
  if (dims === undefined) {
    throw invalidParam("size", `Invalid value: '${size}' is not WIDTHxHEIGHT. ${supported}.`);
  }
  const problem = sizeRuleViolation(dims.width, dims.height, rule);
  if (problem !== undefined) {
    throw invalidParam("size", `Invalid value: '${size}' (${problem}). ${supported}.`);
  }
}

/** Why `width`x`height` breaks `rule`, or undefined when it fits. */
export function sizeRuleViolation(
  width: number,
  height: number,
  rule: SizeRule,
): string | undefined {
  const m = rule.multiple_of;
  if (m !== undefined && (width % m !== 0 || height % m !== 0)) {
    return `both sides must be multiples of ${m}`;
  }
  const longest = Math.max(width, height);
  const shortest = Math.min(width, height);
  if (rule.max_side !== undefined && longest > rule.max_side) {
    return `a side is above ${rule.max_side} pixels`;
  }
  if (rule.min_side !== undefined && shortest < rule.min_side) {
    return `a side is below ${rule.min_side} pixels`;
  }
  const pixels = width * height;
  if (rule.max_pixels !== undefined && pixels > rule.max_pixels) {
    return `${pixels} pixels is above ${rule.max_pixels}`;
  }
  if (rule.min_pixels !== undefined && pixels < rule.min_pixels) {
    return `${pixels} pixels is below ${rule.min_pixels}`;
  }
  const ratio = width / height;
  if (rule.min_ratio !== undefined && ratio < rule.min_ratio) {
    return `aspect ratio ${formatRatio(ratio)} is narrower than ${formatRatio(rule.min_ratio)}`;
  }
  if (rule.max_ratio !== undefined && ratio > rule.max_ratio) {
    return `aspect ratio ${formatRatio(ratio)} is wider than ${formatRatio(rule.max_ratio)}`;
  }
  return undefined;
}

function describeRule(rule: SizeRule): string {
  const parts: string[] = [];
  if (rule.multiple_of !== undefined) parts.push(`both sides multiples of ${rule.multiple_of}`);
  if (rule.min_side !== undefined) parts.push(`sides at least ${rule.min_side}`);
  if (rule.max_side !== undefined) parts.push(`sides at most ${rule.max_side}`);
  if (rule.min_pixels !== undefined) parts.push(`at least ${rule.min_pixels} pixels`);
  if (rule.max_pixels !== undefined) parts.push(`at most ${rule.max_pixels} pixels`);
  if (rule.min_ratio !== undefined || rule.max_ratio !== undefined) {
    const low = rule.min_ratio === undefined ? "any" : formatRatio(rule.min_ratio);
    const high = rule.max_ratio === undefined ? "any" : formatRatio(rule.max_ratio);
    parts.push(`aspect ratio from ${low} to ${high}`);
  }
  return parts.length === 0 ? "any WIDTHxHEIGHT" : `WIDTHxHEIGHT with ${parts.join(", ")}`;
}

/** Width/height as `W:1` or `1:H`, rounded, so 0.3333 reads 1:3. */
function formatRatio(ratio: number): string {
  const round = (x: number) => String(Math.round(x * 100) / 100);
  return ratio >= 1 ? `${round(ratio)}:1` : `1:${round(1 / ratio)}`;
}

/** A value the client sent may constrain another field (background transparent → png|webp). */
function checkRequires(req: CreateImageRequest, spec: ModelSpec): void {
  for (const [key, read] of ENUM_ENTRIES) {
    const value = read(req);
    const needs = own(spec[key]?.requires, value);
    for (const [other, allowed] of Object.entries(needs ?? {})) {
      const otherKey = other as EnumKey;
      const actual = ENUM_FIELDS[otherKey](req) ?? spec[otherKey]?.default;
      if (actual === undefined || !allowed.includes(actual)) {
        throw invalidParam(
          key,
          `Invalid value for '${key}': '${value}' requires '${other}' to be ${orList(allowed)}; got '${actual}'.`,
        );
      }
    }
  }
}

/** A substyle refines one style: it must be listed for the style sent (or the model's default style). */
function checkSubstyle(
  substyle: string,
  style: string | undefined,
  spec: ModelSpec,
  model: string,
): void {
  const effectiveStyle = style ?? spec.style?.default;
  const allowed = own(spec.substyle?.by_style, effectiveStyle);
  if (allowed === undefined) {
    throw invalidParam(
      "substyle",
      `Invalid value: '${substyle}'. Style '${effectiveStyle}' of ${model} takes no substyle; ` +
        `styles with substyles: ${quoteList(Object.keys(spec.substyle?.by_style ?? {}))}.`,
    );
  }
  if (!allowed.includes(substyle)) {
    throw invalidParam(
      "substyle",
      `Invalid value: '${substyle}'. Supported substyles of style '${effectiveStyle}' for ${model} are: ${quoteList(allowed)}.`,
    );
  }
}

/** Compression below the maximum only exists for lossy formats (png is lossless). */
function checkCompressionFormat(req: CreateImageRequest, spec: ModelSpec): void {
  const compression = req.outputCompression;
  const range = spec.output_compression;
  if (compression === undefined || range === undefined || compression >= range.max) return;
  const format = req.outputFormat ?? spec.output_format?.default;
  if (format === undefined || !range.formats.includes(format)) {
    throw invalidParam(
      "output_compression",
      `Invalid value for 'output_compression': ${compression}. Compression below ${range.max} ` +
        `requires 'output_format' to be ${orList(range.formats)}; got '${format}'.`,
    );
  }
}

/** Partial images are streamed events, so they mean nothing without `stream: true`. */
function checkPartialImages(req: CreateImageRequest): void {
  if (req.partialImages !== undefined && req.stream !== true) {
    throw invalidParam("partial_images", "Invalid 'partial_images': it requires 'stream': true.");
  }
}

/** `aspect_ratio` is another way to say the size; two answers to one question are ambiguous. */
function checkSizeOrAspectRatio(req: CreateImageRequest): void {
  if (req.aspectRatio !== undefined && req.size !== undefined && req.size !== "auto") {
    throw invalidParam(
      "aspect_ratio",
      `Invalid 'aspect_ratio': send either 'size' or 'aspect_ratio', not both (got size '${req.size}').`,
    );
  }
}

/** Object.entries keeping the key type: the field tables above are closed. */
function entriesOf<T extends object>(table: T): [keyof T, T[keyof T]][] {
  return Object.entries(table) as [keyof T, T[keyof T]][];
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => `'${v}'`).join(", ");
}

function orList(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  return quoted.length <= 1
    ? quoted.join("")
    : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}
