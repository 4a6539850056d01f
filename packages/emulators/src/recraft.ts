/**
 * An in-process emulator of Recraft's image API (`POST /v1/images/generations`), used by the
 * tests and by `npm run dev`. Its rules are its own, written from Recraft's API documentation
 * and its appendix (summarised in docs/providers/recraft.md), independent of the gateway's
 * catalog. Raster models answer PNGs, `_vector` models SVG, as a URL on this emulator's own
 * host or as base64, whichever `response_format` asks (URL by default).
 *
 * Test hooks:
 * - A prompt containing the word "forbidden" is refused (400 `content_moderation`; Recraft's
 *   real refusal shape was not captured, so this one is the emulator's own).
 * - `faults` (or `POST /__emulator/faults`, `DELETE` to clear) injects errors, latency,
 *   hangs and resets; `recraftFaults` builds Recraft's usual ones.
 * - `requests` records every generation request, and every edit (`POST /v1/images/imageToImage`
 *   and `/v1/images/inpaint`, multipart: its text fields and per file its name, size, format,
 *   dimensions and bytes).
 * Edits check the image (PNG, JPEG or WebP under 10 MB, at most 16 MP, sides 256-4096),
 * `strength` (image-to-image, required, 0-1) and the mask (inpaint: the image's size, only
 * pure black and white pixels), and answer at the input's size.
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import {
  type ControlOptions,
  commonFaults,
  type Fault,
  FaultQueue,
  faultControl,
  playFault,
} from "./faults.ts";
import {
  BodyTooLarge,
  bearerToken,
  HttpError,
  ImageStore,
  isObject,
  listen,
  parseJsonOrUndefined,
  type RecordedRequest,
  readBody,
  record,
  requestOrigin,
  sendBytes,
  sendHttpError,
  sendJson,
  sendText,
} from "./http-kit.ts";
import { decodePng, type InputInfo, inspectImage, isBlackAndWhite } from "./input-images.ts";
import { renderPng } from "./png.ts";
import { renderSvg } from "./svg.ts";

export type { RecordedRequest };

// ---------------------------------------------------------------------------------------------
// Rule table
// ---------------------------------------------------------------------------------------------

type Tier = "v2v3" | "v4" | "v4_pro";

// Also in the gateway's adapter, on purpose: the emulator models Recraft independently.
/** Aspect → size per model tier (Recraft API appendix, "List of supported image sizes"). */
const SIZES: Readonly<Record<Tier, Readonly<Record<string, string>>>> = {
  v2v3: {
    "1:1": "1024x1024",
    "2:1": "2048x1024",
    "1:2": "1024x2048",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "4:3": "1365x1024",
    "3:4": "1024x1365",
    "5:4": "1280x1024",
    "4:5": "1024x1280",
    "6:10": "1024x1707",
    "14:10": "1434x1024",
    "10:14": "1024x1434",
    "16:9": "1820x1024",
    "9:16": "1024x1820",
  },
  v4: {
    "1:1": "1024x1024",
    "2:1": "1536x768",
    "1:2": "768x1536",
    "3:2": "1280x832",
    "2:3": "832x1280",
    "4:3": "1216x896",
    "3:4": "896x1216",
    "5:4": "1152x896",
    "4:5": "896x1152",
    "6:10": "832x1344",
    "14:10": "1280x896",
    "10:14": "896x1280",
    "16:9": "1344x768",
    "9:16": "768x1344",
  },
  v4_pro: {
    "1:1": "2048x2048",
    "2:1": "3072x1536",
    "1:2": "1536x3072",
    "3:2": "2560x1664",
    "2:3": "1664x2560",
    "4:3": "2432x1792",
    "3:4": "1792x2432",
    "5:4": "2304x1792",
    "4:5": "1792x2304",
    "6:10": "1664x2688",
    "14:10": "2560x1792",
    "10:14": "1792x2560",
    "16:9": "2688x1536",
    "9:16": "1536x2688",
  },
};

/** Sizes the appendix lists without an aspect name of their own. */
const UNNAMED_SIZES: Readonly<Record<Tier, readonly string[]>> = {
  v2v3: ["1707x1024"],
  v4: [],
  v4_pro: [],
};

const V2_RASTER_STYLES: Readonly<Record<string, readonly string[]>> = {
  any: [],
  realistic_image: [
    "b_and_w",
    "enterprise",
    "hard_flash",
    "hdr",
    "motion_blur",
    "natural_light",
    "studio_portrait",
  ],
  digital_illustration: [
    "2d_art_poster",
    "2d_art_poster_2",
    "3d",
    "80s",
    "engraving_color",
    "glow",
    "grain",
    "hand_drawn",
    "hand_drawn_outline",
    "handmade_3d",
    "infantile_sketch",
    "kawaii",
    "pixel_art",
    "plastic",
    "psychedelic",
    "seamless",
    "voxel",
    "watercolor",
  ],
};
const V2_VECTOR_STYLES: Readonly<Record<string, readonly string[]>> = {
  vector_illustration: [
    "70s",
    "cartoon",
    "doodle_line_art",
    "engraving",
    "flat_2",
    "kawaii",
    "line_art",
    "line_circuit",
    "linocut",
    "seamless",
  ],
  icon: [
    "broken_line",
    "colored_outline",
    "colored_shapes",
    "colored_shapes_gradient",
    "doodle_fill",
    "doodle_offset_fill",
    "offset_fill",
    "outline",
    "outline_gradient",
    "uneven_fill",
  ],
};
const V3_RASTER_STYLES: Readonly<Record<string, readonly string[]>> = {
  any: [],
  realistic_image: [
    "b_and_w",
    "enterprise",
    "evening_light",
    "faded_nostalgia",
    "forest_life",
    "hard_flash",
    "hdr",
    "motion_blur",
    "mystic_naturalism",
    "natural_light",
    "natural_tones",
    "organic_calm",
    "real_life_glow",
    "retro_realism",
    "retro_snapshot",
    "studio_portrait",
    "urban_drama",
    "village_realism",
    "warm_folk",
  ],
  digital_illustration: [
    "2d_art_poster",
    "2d_art_poster_2",
    "antiquarian",
    "bold_fantasy",
    "child_book",
    "child_books",
    "cover",
    "crosshatch",
    "digital_engraving",
    "engraving_color",
    "expressionism",
    "freehand_details",
    "grain",
    "grain_20",
    "graphic_intensity",
    "hand_drawn",
    "hand_drawn_outline",
    "handmade_3d",
    "hard_comics",
    "infantile_sketch",
    "long_shadow",
    "modern_folk",
    "multicolor",
    "neon_calm",
    "noir",
    "nostalgic_pastel",
    "outline_details",
    "pastel_gradient",
    "pastel_sketch",
    "pixel_art",
    "plastic",
    "pop_art",
    "pop_renaissance",
    "seamless",
    "street_art",
    "tablet_sketch",
    "urban_glow",
    "urban_sketching",
    "vanilla_dreams",
    "young_adult_book",
    "young_adult_book_2",
  ],
  logo_raster: [
    "emblem_graffiti",
    "emblem_pop_art",
    "emblem_punk",
    "emblem_stamp",
    "emblem_vintage",
  ],
};
const V3_VECTOR_STYLES: Readonly<Record<string, readonly string[]>> = {
  vector_illustration: [
    "bold_stroke",
    "chemistry",
    "colored_stencil",
    "contour_pop_art",
    "cosmics",
    "cutout",
    "depressive",
    "editorial",
    "emotional_flat",
    "engraving",
    "infographical",
    "line_art",
    "line_circuit",
    "linocut",
    "marker_outline",
    "mosaic",
    "naivector",
    "roundish_flat",
    "seamless",
    "segmented_colors",
    "sharp_contrast",
    "thin",
    "vector_photo",
    "vivid_shapes",
  ],
  icon: [],
};

interface ModelRules {
  tier: Tier;
  vector: boolean;
  promptMax: number;
  /** style → its substyles; undefined: the model takes no style (V4). */
  styles?: Readonly<Record<string, readonly string[]>>;
  /** V2/V3 only: negative_prompt and random_seed. */
  legacyExtras: boolean;
  /** API units per image (1000 units = $1). */
  credits: number;
  /** Takes imageToImage and inpaint (V3, V4, V4.1 per Recraft's image-to-image page). */
  edits?: boolean;
}

const MODELS: Readonly<Record<string, ModelRules>> = {
  recraftv2: {
    tier: "v2v3",
    vector: false,
    promptMax: 1000,
    styles: V2_RASTER_STYLES,
    legacyExtras: true,
    credits: 22,
  },
  recraftv2_vector: {
    tier: "v2v3",
    vector: true,
    promptMax: 1000,
    styles: V2_VECTOR_STYLES,
    legacyExtras: true,
    credits: 44,
  },
  recraftv3: {
    tier: "v2v3",
    vector: false,
    promptMax: 1000,
    styles: V3_RASTER_STYLES,
    legacyExtras: true,
    credits: 40,
    edits: true,
  },
  recraftv3_vector: {
    tier: "v2v3",
    vector: true,
    promptMax: 1000,
    styles: V3_VECTOR_STYLES,
    legacyExtras: true,
    credits: 80,
    edits: true,
  },
  recraftv4: {
    tier: "v4",
    vector: false,
    promptMax: 10000,
    legacyExtras: false,
    credits: 40,
    edits: true,
  },
  recraftv4_vector: {
    tier: "v4",
    vector: true,
    promptMax: 10000,
    legacyExtras: false,
    credits: 80,
    edits: true,
  },
  recraftv4_pro: {
    tier: "v4_pro",
    vector: false,
    promptMax: 10000,
    legacyExtras: false,
    credits: 250,
  },
  recraftv4_pro_vector: {
    tier: "v4_pro",
    vector: true,
    promptMax: 10000,
    legacyExtras: false,
    credits: 300,
  },
  recraftv4_1: {
    tier: "v4",
    vector: false,
    promptMax: 10000,
    legacyExtras: false,
    credits: 35,
    edits: true,
  },
};
const DEFAULT_MODEL = "recraftv4_1";

type FieldType = "string" | "integer" | "object" | "array";
const FIELDS: Readonly<Record<string, FieldType>> = {
  prompt: "string",
  model: "string",
  n: "integer",
  style: "string",
  substyle: "string",
  style_id: "string",
  size: "string",
  response_format: "string",
  negative_prompt: "string",
  random_seed: "integer",
  image_format: "string",
  controls: "object",
  text_layout: "array",
};

const MAX_N = 6;
const URL_TTL_MS = 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const REFUSAL_WORD = /\bforbidden\b/i;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface RecraftEmulatorOptions {
  apiKey: string;
  host?: string;
  port?: number;
  /** Clock in ms (URL expiry); defaults to Date.now. */
  now?: () => number;
}

export interface RecraftEmulator {
  /** e.g. http://127.0.0.1:PORT/v1: what `api_base` (RECRAFT_API_BASE) takes. */
  baseUrl: string;
  port: number;
  faults: FaultQueue;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Builders for the faults Recraft is known to produce. Spread to add `times` or `model`. */
export const recraftFaults = {
  ...commonFaults,
  /** 429 without Retry-After, as Recraft sends it (3p). */
  rateLimit(): Fault {
    return {
      status: 429,
      body: {
        code: "rate_limit_exceeded",
        message: "Rate limit exceeded: too many requests. Please retry later.",
      },
    };
  },
  serverError(): Fault {
    return { status: 500, body: { code: "internal_error", message: "Internal server error" } };
  },
  unavailable(): Fault {
    return { status: 503, body: "Service Unavailable" };
  },
  malformed(): Fault {
    return commonFaults.malformed('{"created": 1713833628, "credits": 40, "data": [{"url');
  },
};

export async function startRecraftEmulator(opts: RecraftEmulatorOptions): Promise<RecraftEmulator> {
  const emulator = new Emulator(opts);
  const server = await listen((req, res) => emulator.handle(req, res), opts);
  emulator.origin = server.origin;
  return {
    baseUrl: `${server.origin}/v1`,
    port: server.port,
    faults: emulator.faults,
    requests: emulator.requests,
    close: server.close,
  };
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

function badRequest(code: string, message: string): HttpError {
  return new HttpError(400, { code, message });
}

interface ImageRequest {
  model: string;
  rules: ModelRules;
  prompt: string;
  n: number;
  width: number;
  height: number;
  responseFormat: "url" | "b64_json";
}

/** Edit endpoints: their text fields beside the generation's, and whether a mask is taken. */
const EDIT_PATHS: Readonly<Record<string, { mask: boolean; strength: boolean }>> = {
  "/v1/images/imageToImage": { mask: false, strength: true },
  "/v1/images/inpaint": { mask: true, strength: false },
};
const EDIT_FIELDS = [
  "prompt",
  "model",
  "n",
  "style",
  "substyle",
  "style_id",
  "response_format",
  "negative_prompt",
  "random_seed",
];
/** Input images: PNG, JPEG or WebP under 10 MB, at most 16 MP, sides 256-4096 (Recraft's inpainting page). */
const EDIT_IMAGE = { maxBytes: 10 * 1024 * 1024, maxPixels: 16 * 1024 * 1024, min: 256, max: 4096 };
const EDIT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/**
 * A multipart edit body → the request it makes: the generation's checks on its text fields,
 * then the image (and mask: the image's size, pure black and white) and strength; the result
 * keeps the input's size.
 */
async function validateEdit(
  req: http.IncomingMessage,
  body: Buffer,
  endpoint: { mask: boolean; strength: boolean },
): Promise<{ request: ImageRequest; recorded: object }> {
  const contentType = req.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\b/i.test(contentType))
    throw badRequest("invalid_request", "Request body must be multipart/form-data");
  let form: FormData;
  try {
    form = await new Request("http://emulator/", {
      method: "POST",
      headers: { "content-type": contentType },
      body: new Uint8Array(body),
    }).formData();
  } catch {
    throw badRequest("invalid_request", "Request body is not valid multipart/form-data");
  }
  const fields: Record<string, unknown> = {};
  const files: Record<string, Buffer> = {};
  for (const [name, value] of form.entries()) {
    if (typeof value !== "string") {
      if (name !== "image" && !(endpoint.mask && name === "mask"))
        throw badRequest("invalid_request", `Unknown file field: ${name}`);
      files[name] = Buffer.from(await value.arrayBuffer());
      continue;
    }
    if (name === "strength" && endpoint.strength) {
      fields.strength = value;
      continue;
    }
    if (!EDIT_FIELDS.includes(name)) throw badRequest("invalid_request", `Unknown field: ${name}`);
    fields[name] = FIELDS[name] === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  const { strength, ...rest } = fields;
  const request = validate(rest);
  if (!request.rules.edits)
    throw badRequest("not_supported", `Model ${request.model} does not support this operation`);
  const image = files.image;
  if (image === undefined) throw badRequest("invalid_image", "Field 'image' is required");
  const info = checkEditImage(image, "image");
  if (endpoint.strength) {
    const value = strength === undefined ? Number.NaN : Number(strength);
    if (strength === undefined || !(value >= 0 && value <= 1))
      throw badRequest(
        "invalid_strength",
        "Field 'strength' is required and must be between 0 and 1",
      );
  }
  if (endpoint.mask) {
    const mask = files.mask;
    if (mask === undefined) throw badRequest("invalid_mask", "Field 'mask' is required");
    const m = checkEditImage(mask, "mask");
    if (m.width !== info.width || m.height !== info.height)
      throw badRequest(
        "invalid_mask",
        `Mask size ${m.width}x${m.height} must match the image size ${info.width}x${info.height}`,
      );
    const png = m.format === "png" ? decodePng(mask) : undefined;
    if (m.format === "png" && (png === undefined || !isBlackAndWhite(png)))
      throw badRequest(
        "invalid_mask",
        "Mask must contain only pure black (0) and pure white (255) pixels",
      );
  }
  const recorded = {
    ...fields,
    files: Object.entries(files).map(([name, bytes]) => ({
      name,
      size: bytes.length,
      ...inspectImage(bytes),
      bytes,
    })),
  };
  return { request: { ...request, width: info.width, height: info.height }, recorded };
}

function checkEditImage(bytes: Buffer, field: string): InputInfo {
  const info = inspectImage(bytes);
  if (info === undefined)
    throw badRequest(`invalid_${field}`, `Field '${field}' must be a PNG, JPEG or WEBP image`);
  const r = EDIT_IMAGE;
  const problem =
    bytes.length >= r.maxBytes
      ? "must be smaller than 10 MB"
      : info.width * info.height > r.maxPixels
        ? "must have at most 16 megapixels"
        : Math.min(info.width, info.height) < r.min || Math.max(info.width, info.height) > r.max
          ? `sides must be between ${r.min} and ${r.max} pixels`
          : undefined;
  if (problem) throw badRequest(`invalid_${field}`, `Image '${field}' ${problem}`);
  return info;
}

function validate(raw: unknown): ImageRequest {
  if (!isObject(raw)) throw badRequest("invalid_request", "Request body must be a JSON object");
  for (const [key, value] of Object.entries(raw)) {
    const type = FIELDS[key];
    if (type === undefined) throw badRequest("invalid_request", `Unknown field: ${key}`);
    if (value === null) continue;
    const ok =
      type === "integer"
        ? Number.isInteger(value)
        : type === "array"
          ? Array.isArray(value)
          : type === "object"
            ? isObject(value)
            : typeof value === type;
    if (!ok) throw badRequest("invalid_request", `Field '${key}' must be of type ${type}`);
  }
  const p = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null));
  const model = (p.model as string | undefined) ?? DEFAULT_MODEL;
  const rules = MODELS[model];
  if (rules === undefined) throw badRequest("invalid_model", `Unknown model: ${model}`);
  const prompt = p.prompt as string | undefined;
  if (prompt === undefined || prompt.trim() === "")
    throw badRequest("invalid_prompt", "Prompt must not be empty");
  if (prompt.length > rules.promptMax) {
    throw badRequest(
      "prompt_too_long",
      `Prompt is too long: ${prompt.length} characters, the maximum for ${model} is ${rules.promptMax}`,
    );
  }
  const n = (p.n as number | undefined) ?? 1;
  if (n < 1 || n > MAX_N)
    throw badRequest("invalid_n", `n must be between 1 and ${MAX_N}, got ${n}`);
  checkStyle(p, model, rules);
  if (!rules.legacyExtras) {
    for (const key of ["negative_prompt", "random_seed"]) {
      if (p[key] !== undefined)
        throw badRequest("not_supported", `Parameter '${key}' is not supported for model ${model}`);
    }
  }
  if (p.image_format !== undefined && !["png", "webp"].includes(p.image_format as string)) {
    throw badRequest(
      "invalid_image_format",
      `Invalid image_format '${String(p.image_format)}': expected png or webp`,
    );
  }
  const responseFormat = (p.response_format as string | undefined) ?? "url";
  if (responseFormat !== "url" && responseFormat !== "b64_json") {
    throw badRequest(
      "invalid_response_format",
      `Invalid response_format '${responseFormat}': expected url or b64_json`,
    );
  }
  const [width, height] = resolveSize(p.size as string | undefined, model, rules);
  return { model, rules, prompt, n, width, height, responseFormat };
}

function checkStyle(p: Record<string, unknown>, model: string, rules: ModelRules): void {
  const style = p.style as string | undefined;
  const substyle = p.substyle as string | undefined;
  if (rules.styles === undefined) {
    for (const key of ["style", "substyle"]) {
      if (p[key] !== undefined)
        throw badRequest("style_not_supported", `Styles are not supported for model ${model}`);
    }
    return;
  }
  if (style !== undefined && p.style_id !== undefined)
    throw badRequest("invalid_style", "Provide either style or style_id, not both");
  if (style !== undefined && rules.styles[style] === undefined) {
    throw badRequest(
      "invalid_style",
      `Style '${style}' is not supported for model ${model}; expected one of: ${Object.keys(rules.styles).join(", ")}`,
    );
  }
  if (substyle === undefined) return;
  if (style === undefined) throw badRequest("invalid_substyle", "substyle requires style");
  if (!rules.styles[style]!.includes(substyle)) {
    throw badRequest(
      "invalid_substyle",
      `Substyle '${substyle}' is not supported for style '${style}' of model ${model}`,
    );
  }
}

function resolveSize(
  requested: string | undefined,
  model: string,
  rules: ModelRules,
): [number, number] {
  const table = SIZES[rules.tier];
  const size = requested === undefined ? table["1:1"]! : (table[requested] ?? requested);
  if (!Object.values(table).includes(size) && !UNNAMED_SIZES[rules.tier].includes(size)) {
    throw badRequest(
      "invalid_size",
      `Size '${requested}' is not supported for model ${model}; use one of: ${Object.values(table).join(", ")}, or an aspect ratio`,
    );
  }
  const [w, h] = size.split("x").map(Number);
  return [w!, h!];
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/** The control endpoint answers in Recraft's error shape; DELETE answers `{"pending": 0}`. */
const CONTROL: ControlOptions = {
  readBody: (req) => readBody(req, MAX_BODY_BYTES),
  invalid: (message) => badRequest("invalid_fault", message),
  clearedStatus: 200,
};

const IMAGE_PATH = /^\/img\/([0-9a-f]+)\.(png|svg)$/;

class Emulator {
  readonly faults = new FaultQueue();
  readonly requests: RecordedRequest[] = [];
  origin = "";
  readonly #apiKey: string;
  readonly #now: () => number;
  readonly #images: ImageStore;

  constructor(opts: RecraftEmulatorOptions) {
    this.#apiKey = opts.apiKey;
    this.#now = opts.now ?? Date.now;
    this.#images = new ImageStore({ now: this.#now, ttlMs: URL_TTL_MS });
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    res.setHeader("x-recraft-requestid", randomUUID());
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://emulator");
    try {
      if (url.pathname === "/__emulator/faults")
        return await faultControl(this.faults, req, res, CONTROL);
      const image = IMAGE_PATH.exec(url.pathname);
      if (image && method === "GET") return this.#download(res, image[1]!);
      const edit = EDIT_PATHS[url.pathname];
      if (edit !== undefined && method === "POST") return await this.#edit(req, res, url, edit);
      if (url.pathname !== "/v1/images/generations" || method !== "POST")
        throw new HttpError(404, "Not Found");
      const body = await readBody(req, MAX_BODY_BYTES);
      const json = parseJsonOrUndefined(body);
      record(this.requests, {
        method,
        path: url.pathname + url.search,
        headers: req.headers,
        body: json,
      });
      const model = isObject(json) && typeof json.model === "string" ? json.model : DEFAULT_MODEL;
      if (await playFault(this.faults, model, req, res)) return;

      this.#authenticate(req);
      if (json === undefined)
        throw new HttpError(400, {
          code: "invalid_request",
          message: "Request body is not valid JSON",
        });
      const request = validate(json);
      if (REFUSAL_WORD.test(request.prompt)) {
        throw badRequest(
          "content_moderation",
          "The prompt was rejected by content moderation. Please change the prompt and try again.",
        );
      }
      sendJson(res, 200, this.#answer(req, request));
    } catch (err) {
      if (err instanceof BodyTooLarge) return sendText(res, 413, "Request Entity Too Large");
      if (!(err instanceof HttpError)) throw err;
      sendHttpError(res, err);
    }
  }

  /** imageToImage and inpaint: multipart in, the generation's answer out. */
  async #edit(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    endpoint: { mask: boolean; strength: boolean },
  ): Promise<void> {
    const body = await readBody(req, EDIT_MAX_BODY_BYTES);
    const entry = {
      method: "POST",
      path: url.pathname + url.search,
      headers: req.headers,
      body: undefined as unknown,
    };
    record(this.requests, entry);
    if (await playFault(this.faults, undefined, req, res)) return;
    this.#authenticate(req);
    const { request, recorded } = await validateEdit(req, body, endpoint);
    entry.body = recorded;
    if (REFUSAL_WORD.test(request.prompt)) {
      throw badRequest(
        "content_moderation",
        "The prompt was rejected by content moderation. Please change the prompt and try again.",
      );
    }
    sendJson(res, 200, this.#answer(req, request));
  }

  /** Bearer token; 401 is plain text, as Recraft answers it. */
  #authenticate(req: http.IncomingMessage): void {
    if (bearerToken(req) !== this.#apiKey) throw new HttpError(401, "Unauthorized");
  }

  #answer(req: http.IncomingMessage, r: ImageRequest): object {
    const data = Array.from({ length: r.n }, (_, i) => {
      const seed = `recraft|${r.model}|${r.prompt}|${i}`;
      const render = r.rules.vector
        ? () => Buffer.from(renderSvg(r.width, r.height, seed))
        : () => renderPng(r.width, r.height, seed);
      const image_id = randomUUID();
      if (r.responseFormat === "b64_json")
        return { image_id, b64_json: render().toString("base64") };
      const ext = r.rules.vector ? "svg" : "png";
      const { id } = this.#images.put(render, r.rules.vector ? "image/svg+xml" : "image/png");
      return { image_id, url: `${requestOrigin(req, this.origin)}/img/${id}.${ext}` };
    });
    return { created: Math.floor(this.#now() / 1000), credits: r.rules.credits * r.n, data };
  }

  #download(res: http.ServerResponse, id: string): void {
    const image = this.#images.get(id);
    if (image === undefined || image === "expired") sendText(res, 404, "Not Found");
    else sendBytes(res, 200, image.bytes, { "content-type": image.contentType });
  }
}
