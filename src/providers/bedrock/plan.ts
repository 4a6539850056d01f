/**
 * Our request → a plan for every upstream call, by the catalog entry's `family`: size,
 * quality, style and seed, checked and chosen once for all the calls of a request.
 */
import { randomInt } from "node:crypto";
import type { Family, ModelSpec } from "../../catalog/catalog.ts";
import { GatewayError, invalidParam } from "../../errors/errors.ts";
import type { CreateImageRequest } from "../../gen/imagegate/v1/images_pb.js";
import { type DecodedImages, NO_IMAGES } from "../image-json.ts";
import { malformedBody } from "../json.ts";
import type { GenerationResult } from "../types.ts";
import { PROVIDER } from "./errors.ts";
import { toAmazonEditRequest, toSd3ImageToImageRequest } from "./edit-request.ts";
import { toAmazonImageRequest, toSd3Request, toSdxlRequest } from "./request.ts";
import { fromAmazonImageResponse, fromSd3Response, fromSdxlResponse } from "./response.ts";
import type { BedrockFamily, BedrockPlan, BedrockRequestBody } from "./shapes.ts";
import { catalogSize, sd3Size } from "./sizes.ts";
import { own } from "../../runtime/own.ts";

/** The four families by catalog `family`: how the size is found, the body built and the answer read. */
interface FamilyRules {
  /** Resolves the size (and aspect ratio) to send; throws a 400 for a size it has no mapping for. */
  size(
    req: CreateImageRequest,
    spec: ModelSpec,
  ): { width: number; height: number; aspectRatio?: string };
  body(plan: BedrockPlan, count: number, seed: number | undefined): BedrockRequestBody;
  /** The body of an edit plan's call (edit-request.ts); absent: the family does not edit. */
  editBody?(plan: BedrockPlan, count: number, seed: number | undefined): BedrockRequestBody;
  /** `decoded`: images `image-json.ts` already read, by the marker standing in for them in `json`. */
  parse(json: unknown, plan: BedrockPlan, count: number, decoded: DecodedImages): GenerationResult;
  /**
   * Whether an unset seed means a fixed one upstream (Titan 42, Nova 12): calls of a fan-out
   * then need seeds of their own, or every call would return the same images.
   */
  fixedDefaultSeed: boolean;
}

/** The catalog's "no preset" style value: nothing is sent upstream for it. */
const NO_STYLE = "none";

export const FAMILIES: Readonly<Record<BedrockFamily, FamilyRules>> = {
  sdxl: {
    size: catalogSize,
    body: toSdxlRequest,
    parse: fromSdxlResponse,
    fixedDefaultSeed: false,
  },
  sd3: {
    size: sd3Size,
    body: toSd3Request,
    editBody: toSd3ImageToImageRequest,
    parse: fromSd3Response,
    fixedDefaultSeed: false,
  },
  titan: {
    size: catalogSize,
    body: toAmazonImageRequest,
    editBody: toAmazonEditRequest,
    parse: fromAmazonImageResponse,
    fixedDefaultSeed: true,
  },
  nova: {
    size: catalogSize,
    body: toAmazonImageRequest,
    editBody: toAmazonEditRequest,
    parse: fromAmazonImageResponse,
    fixedDefaultSeed: true,
  },
};

export function isBedrockFamily(family: Family): family is BedrockFamily {
  return Object.hasOwn(FAMILIES, family);
}

/** Our request → what every call shares. Validation against the catalog already ran. */
export function planBedrockRequest(req: CreateImageRequest, spec: ModelSpec): BedrockPlan {
  const family = spec.family;
  if (!isBedrockFamily(family)) {
    throw new GatewayError("internal", `catalog family '${family}' has no Bedrock request shape`);
  }
  const { width, height, aspectRatio } = FAMILIES[family].size(req, spec);
  const plan: BedrockPlan = {
    family,
    prompt: req.prompt ?? "",
    width,
    height,
    seedMax: spec.seed?.max ?? 0,
  };
  if (aspectRatio !== undefined) plan.aspectRatio = aspectRatio;
  if (req.negativePrompt !== undefined && req.negativePrompt !== "")
    plan.negativePrompt = req.negativePrompt;
  if (req.seed !== undefined) plan.seed = req.seed;
  if (req.style !== undefined && req.style !== NO_STYLE) plan.style = req.style;
  if (req.outputFormat !== undefined) plan.outputFormat = req.outputFormat;
  if (family === "titan" || family === "nova") plan.quality = bedrockQuality(req.quality, spec);
  return plan;
}

/**
 * The quality table lives in the catalog: `same_as` maps OpenAI's qualities onto Bedrock's
 * standard | premium (hd/high → premium), so pricing and the upstream agree.
 */
export function bedrockQuality(quality: string | undefined, spec: ModelSpec): string {
  const chosen = quality ?? spec.quality?.default ?? "standard";
  const mapped = own(spec.quality?.same_as, chosen) ?? chosen;
  if (mapped !== "standard" && mapped !== "premium") {
    throw invalidParam(
      "quality",
      `Invalid value: '${chosen}'. ${spec.model} takes standard or premium (hd and high mean premium).`,
    );
  }
  return mapped;
}

/**
 * The seed of call `index` of a fan-out: the client's seed plus the index (wrapping within
 * the model's range) so calls differ; without one, a random seed only where the upstream's
 * default is fixed and there is more than one call.
 */
export function seedForCall(
  plan: BedrockPlan,
  index: number,
  calls: number,
  random = randomSeed,
): number | undefined {
  if (plan.seed !== undefined) return (plan.seed + index) % (plan.seedMax + 1);
  if (calls > 1 && FAMILIES[plan.family].fixedDefaultSeed) return random(plan.seedMax);
  return undefined;
}

function randomSeed(max: number): number {
  return randomInt(0, max + 1);
}

/** The body of one upstream call producing `count` images. */
export function toBedrockRequest(
  plan: BedrockPlan,
  count: number,
  seed: number | undefined = plan.seed,
): BedrockRequestBody {
  const rules = FAMILIES[plan.family];
  if (plan.edit === undefined) return rules.body(plan, count, seed);
  if (rules.editBody === undefined)
    throw new GatewayError("internal", `Bedrock family '${plan.family}' has no edit body`);
  return rules.editBody(plan, count, seed);
}

/** The 200 body of one call → images and the count of filtered ones (never a refusal by itself). */
export function fromBedrockResponse(
  json: unknown,
  plan: BedrockPlan,
  count: number,
  decoded: DecodedImages = NO_IMAGES,
): GenerationResult {
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw malformedBody("the body is not a JSON object", PROVIDER);
  return FAMILIES[plan.family].parse(json, plan, count, decoded);
}
