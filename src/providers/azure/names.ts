/**
 * Which model an Azure deployment serves. Its name is the operator's own (`azure/<deployment>`),
 * so the catalog entry is `model_info.base_model` when given, else the model the name spells
 * (`dall-e-3`, `dalle3`, `prod-gpt-image-1`: letters and digits compared, the longest model
 * id or alias contained in the name), else unknown: then the deployment gets an entry that
 * admits whatever at least one Azure image model accepts (the deployment itself decides the
 * rest), and its requests are counted unpriced (`spec.model` is the deployment name, which
 * has no price).
 */
import type { Catalog, EnumSpec, ModelSpec } from "../../catalog/catalog.ts";

export type AzureModel =
  | { kind: "base_model"; spec: ModelSpec | undefined }
  | { kind: "spelled"; spec: ModelSpec }
  | { kind: "unknown"; spec: ModelSpec };

function letters(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/** The catalog entry an Azure deployment name spells, if any. */
export function spelledAzureModel(catalog: Catalog, deployment: string): ModelSpec | undefined {
  const name = letters(deployment);
  let best: { spec: ModelSpec; length: number } | undefined;
  for (const spec of catalog.entries()) {
    if (spec.provider !== "azure") continue;
    for (const id of [spec.model, ...spec.aliases]) {
      const l = letters(id);
      if (l !== "" && name.includes(l) && (best === undefined || l.length > best.length))
        best = { spec, length: l.length };
    }
  }
  return best?.spec;
}

export function azureModelFor(
  catalog: Catalog,
  deployment: string,
  baseModel: string | undefined,
): AzureModel {
  if (baseModel !== undefined)
    return { kind: "base_model", spec: catalog.lookup("azure", baseModel) };
  const exact = catalog.lookup("azure", deployment) ?? spelledAzureModel(catalog, deployment);
  if (exact !== undefined) return { kind: "spelled", spec: exact };
  return { kind: "unknown", spec: anyAzureModel(catalog, deployment) };
}

const cache = new WeakMap<Catalog, Omit<ModelSpec, "model">>();

/**
 * An entry admitting what any Azure image model accepts: each field's values and ranges are
 * the union over the Azure entries, with no cross-field rules (`requires`) or mappings
 * (`same_as`); the request is passed on as the client sent it.
 */
export function anyAzureModel(catalog: Catalog, deployment: string): ModelSpec {
  let base = cache.get(catalog);
  if (base === undefined) {
    base = unionOf(catalog.entries().filter((e) => e.provider === "azure"));
    cache.set(catalog, base);
  }
  return Object.freeze({ ...base, model: deployment });
}

function unionOf(entries: readonly ModelSpec[]): Omit<ModelSpec, "model"> {
  const enumUnion = (key: "quality" | "style" | "background" | "moderation" | "output_format") => {
    const specs = entries.map((e) => e[key]).filter((s): s is EnumSpec => s !== undefined);
    if (specs.length === 0) return undefined;
    const values = [...new Set(specs.flatMap((s) => s.values))];
    return { values, default: specs[0]!.default };
  };
  const sizes = [...new Set(entries.flatMap((e) => e.size.values))];
  const compressions = entries.flatMap((e) =>
    e.output_compression === undefined ? [] : [e.output_compression],
  );
  const limits = entries.map((e) => e.prompt_max_chars);
  const spec: Omit<ModelSpec, "model"> = {
    provider: "azure",
    aliases: [],
    // The shape of the body is OpenAI's either way; gpt-image: response_format is not sent
    // (GPT-image deployments reject it; DALL·E ones answer their default) and the
    // api-version default serves both families.
    family: "gpt-image",
    generates: true,
    n: {
      min: 1,
      max: Math.max(...entries.map((e) => e.n.max)),
      default: 1,
    },
    upstream_max_n: Math.max(...entries.map((e) => e.upstream_max_n)),
    size: {
      values: sizes,
      default: sizes.find((s) => entries.every((e) => e.size.values.includes(s))) ?? sizes[0]!,
    },
    native_response: "b64_json",
    // Not `stream`: a deployment of unknown model may not stream (DALL·E does not); a
    // streamed request gets the ordinary call's answer as one completed event per image.
    params: [...new Set(entries.flatMap((e) => e.params))].filter((p) => p !== "stream"),
  };
  if (limits.every((l) => l !== undefined)) spec.prompt_max_chars = Math.max(...limits);
  for (const key of ["quality", "style", "background", "moderation", "output_format"] as const) {
    const u = enumUnion(key);
    if (u !== undefined) spec[key] = u;
  }
  if (compressions.length > 0) {
    spec.output_compression = {
      min: Math.min(...compressions.map((c) => c.min)),
      max: Math.max(...compressions.map((c) => c.max)),
      formats: [...new Set(compressions.flatMap((c) => c.formats))],
    };
  }
  return spec;
}
