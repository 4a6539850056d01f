/**
 * Checks a REST body against a request message before it is decoded, so a wrong key or
 * type gets OpenAI's style of 400 naming the field instead of a protobuf decoding error.
 * OpenAI itself rejects unrecognized arguments; so do we.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { invalidParam } from "../errors/errors.ts";

const INT_RANGE: Partial<Record<ScalarType, [number, number]>> = {
  [ScalarType.INT32]: [-2147483648, 2147483647],
  [ScalarType.SINT32]: [-2147483648, 2147483647],
  [ScalarType.SFIXED32]: [-2147483648, 2147483647],
  [ScalarType.UINT32]: [0, 4294967295],
  [ScalarType.FIXED32]: [0, 4294967295],
  [ScalarType.INT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SINT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.SFIXED64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [ScalarType.UINT64]: [0, Number.MAX_SAFE_INTEGER],
  [ScalarType.FIXED64]: [0, Number.MAX_SAFE_INTEGER],
};

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a decimal";
  return `a ${typeof v}`;
}

function fieldByJsonKey(desc: DescMessage, key: string): DescField | undefined {
  return desc.fields.find((f) => f.jsonName === key || f.name === key);
}

export function checkJsonBody(desc: DescMessage, value: unknown): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalidParam(
      undefined,
      `The request body must be a JSON object, but got ${jsonType(value)}.`,
    );
  }
  checkObject(desc, value as Record<string, unknown>, "");
}

function checkObject(desc: DescMessage, obj: Record<string, unknown>, prefix: string): void {
  for (const [key, v] of Object.entries(obj)) {
    const param = prefix + key;
    const field = fieldByJsonKey(desc, key);
    if (field === undefined)
      throw invalidParam(param, `Unrecognized request argument supplied: ${param}`);
    if (v === null) continue;
    checkValue(field, v, param);
  }
}

function checkValue(field: DescField, v: unknown, param: string): void {
  switch (field.fieldKind) {
    case "scalar":
      checkScalar(field.scalar, v, param);
      break;
    case "enum":
      if (typeof v !== "string" && typeof v !== "number") throw wrongType(param, "a string", v);
      break;
    case "message":
      // JSON's own types as protobuf's well-known types: any object, any array, any value.
      if (field.message.typeName === "google.protobuf.Value") break;
      if (field.message.typeName === "google.protobuf.ListValue") {
        if (!Array.isArray(v)) throw wrongType(param, "an array", v);
        break;
      }
      if (typeof v !== "object" || Array.isArray(v)) throw wrongType(param, "an object", v);
      if (field.message.typeName === "google.protobuf.Struct") break;
      checkObject(field.message, v as Record<string, unknown>, `${param}.`);
      break;
    case "list":
      if (!Array.isArray(v)) throw wrongType(param, "an array", v);
      for (const [i, item] of v.entries()) {
        const at = `${param}[${i}]`;
        if (field.listKind === "scalar") checkScalar(field.scalar, item, at);
        else if (field.listKind === "message") {
          if (item === null || typeof item !== "object" || Array.isArray(item))
            throw wrongType(at, "an object", item);
          checkObject(field.message, item as Record<string, unknown>, `${at}.`);
        }
      }
      break;
    case "map":
      if (typeof v !== "object" || Array.isArray(v)) throw wrongType(param, "an object", v);
      break;
  }
}

/** With the `u` flag a paired surrogate is one code point, so only unpaired halves match. */
const LONE_SURROGATE = /\p{Cs}/u;

function checkScalar(scalar: ScalarType, v: unknown, param: string): void {
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) {
    if (typeof v !== "string") throw wrongType(param, "a string", v);
    // A `\ud800`-style escape is valid JSON but not Unicode; protobuf would reject it without naming the field.
    if (LONE_SURROGATE.test(v)) {
      throw invalidParam(
        param,
        `Invalid '${param}': the string contains an unpaired UTF-16 surrogate (an escape in the range \\ud800-\\udfff), which is not valid Unicode.`,
      );
    }
    return;
  }
  if (scalar === ScalarType.BOOL) {
    if (typeof v !== "boolean") throw wrongType(param, "a boolean", v);
    return;
  }
  const range = INT_RANGE[scalar];
  if (range !== undefined) {
    if (typeof v !== "number" || !Number.isInteger(v)) throw wrongType(param, "an integer", v);
    if (v < range[0])
      throw invalidParam(
        param,
        `Invalid '${param}': integer below minimum value. Expected a value >= ${range[0]}, but got ${v} instead.`,
      );
    if (v > range[1])
      throw invalidParam(
        param,
        `Invalid '${param}': integer above maximum value. Expected a value <= ${range[1]}, but got ${v} instead.`,
      );
    return;
  }
  if (typeof v !== "number") throw wrongType(param, "a number", v);
}

function wrongType(param: string, expected: string, got: unknown) {
  return invalidParam(
    param,
    `Invalid type for '${param}': expected ${expected}, but got ${jsonType(got)} instead.`,
  );
}
