/**
 * The URL half of REST transcoding: `google.api.http` path templates and query parameters
 * mapped onto the request message, as https://github.com/googleapis/googleapis/blob/master/google/api/http.proto
 * describes them. Templates may hold literal segments, `{field}` or `{field=*}` (one
 * segment) and, last, `{field=**}` (the rest of the path, slashes included, so a name like
 * `openai/dall-e-3` may be sent with its slash or as `%2F`). Variables and query parameters
 * name fields of the request message, dotted for nested messages (`?a.b=1`), repeated by
 * repeating the parameter. The values become the JSON the body would have held, so the
 * same check (`json-check.ts`) names a wrong one in OpenAI's words.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { invalidParam } from "../errors/errors.ts";

type Segment = { literal: string } | { field: string; rest: boolean };

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  /** Whether the template has variables (else it is matched as an exact string). */
  readonly variable: boolean;
}

const VARIABLE = /^\{([A-Za-z_][A-Za-z0-9_.]*)(?:=(\*\*?))?\}$/;

/** Parses a template; one this transcoder cannot serve throws, naming the reason. */
export function parseTemplate(source: string, input: DescMessage): PathTemplate {
  if (!source.startsWith("/") || source.includes(":"))
    throw new Error(`unsupported path template ${source}`);
  const parts = source.slice(1).split("/");
  const segments = parts.map((part, i): Segment => {
    if (!part.includes("{") && !part.includes("}")) return { literal: part };
    const m = VARIABLE.exec(part);
    if (m === null) throw new Error(`unsupported path template segment ${part} in ${source}`);
    const rest = m[2] === "**";
    if (rest && i !== parts.length - 1)
      throw new Error(`{${m[1]}=**} must be the last segment of ${source}`);
    const field = fieldAt(input, m[1]!);
    if (field === undefined || field.fieldKind !== "scalar")
      throw new Error(`${source}: ${m[1]} is not a scalar field of ${input.typeName}`);
    return { field: m[1]!, rest };
  });
  return { source, segments, variable: segments.some((s) => "field" in s) };
}

/** The variables' values (percent-decoded) when `path` matches, else undefined. */
export function matchTemplate(
  template: PathTemplate,
  path: string,
): Map<string, string> | undefined {
  const parts = path.slice(1).split("/");
  const values = new Map<string, string>();
  const { segments } = template;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if ("literal" in segment) {
      if (parts[i] !== segment.literal) return undefined;
      continue;
    }
    const raw = segment.rest ? parts.slice(i).join("/") : parts[i];
    if (raw === undefined || raw === "") return undefined;
    const value = decode(raw);
    if (value === undefined) return undefined;
    values.set(segment.field, value);
    if (segment.rest) return values;
  }
  return parts.length === segments.length ? values : undefined;
}

function decode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * The request as JSON: `body` (the parsed JSON body, or an empty object when the rule
 * takes none), the path's variables and, when `query` is given, its parameters.
 */
export function requestJson(
  input: DescMessage,
  body: unknown,
  variables: ReadonlyMap<string, string> | undefined,
  query: URLSearchParams | undefined,
): unknown {
  if (variables === undefined && query === undefined) return body;
  // A body that is not an object is left for the body check to name.
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  const json = body as Record<string, unknown>;
  for (const [name, value] of query ?? []) {
    const field = fieldAt(input, name);
    if (field === undefined || field.fieldKind === "map" || field.fieldKind === "message")
      throw invalidParam(name, `Unrecognized request argument supplied: ${name}`);
    const converted = fromQueryValue(field, value, name);
    const at = objectFor(json, name);
    const key = name.slice(name.lastIndexOf(".") + 1);
    if (field.fieldKind === "list") {
      const list = Object.hasOwn(at, key) ? at[key] : [];
      at[key] = [...(Array.isArray(list) ? list : [list]), converted];
    } else if (Object.hasOwn(at, key))
      throw invalidParam(name, `The query parameter '${name}' may be given only once.`);
    else at[key] = converted;
  }
  // Path variables win over the body's fields of the same name, as in other transcoders.
  for (const [name, value] of variables ?? []) {
    const field = fieldAt(input, name)!;
    objectFor(json, name)[name.slice(name.lastIndexOf(".") + 1)] = fromQueryValue(
      field,
      value,
      name,
    );
  }
  return json;
}

/** The field a dotted path names (by proto or JSON names), through singular messages. */
function fieldAt(message: DescMessage, path: string): DescField | undefined {
  let desc: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path.split(".")) {
    if (desc === undefined) return undefined;
    field = desc.fields.find((f) => f.name === name || f.jsonName === name);
    if (field === undefined) return undefined;
    desc = field.fieldKind === "message" ? field.message : undefined;
  }
  return field;
}

/** The object that holds the last name of a dotted path, created on the way. */
function objectFor(json: Record<string, unknown>, path: string): Record<string, unknown> {
  let at = json;
  for (const name of path.split(".").slice(0, -1)) {
    const next = Object.hasOwn(at, name) ? at[name] : undefined;
    at[name] = next !== null && typeof next === "object" && !Array.isArray(next) ? next : {};
    at = at[name] as Record<string, unknown>;
  }
  return at;
}

/** A query or path value as the JSON value the field takes (checked later, by type and range). */
function fromQueryValue(field: DescField, value: string, name: string): unknown {
  const scalar =
    field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")
      ? field.scalar
      : undefined;
  if (scalar === undefined || scalar === ScalarType.STRING || scalar === ScalarType.BYTES)
    return value;
  if (scalar === ScalarType.BOOL) {
    if (value === "true" || value === "false") return value === "true";
    throw invalidParam(name, `Invalid '${name}': expected true or false, but got '${value}'.`);
  }
  const n = value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(n))
    throw invalidParam(name, `Invalid '${name}': expected a number, but got '${value}'.`);
  return n;
}
