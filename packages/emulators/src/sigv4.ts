/**
 * Server-side SigV4 verification for the AWS emulators, written from AWS's specification
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html) with
 * node:crypto only. It is deliberately independent of @smithy/signature-v4, which the
 * gateway signs with, so that a bug in either shows up as a rejected request; the tests also
 * check it against AWS's published test vector and against the official AWS SDK.
 *
 * Errors carry the class and message AWS services answer with (403 unless noted).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

const ALGORITHM = "AWS4-HMAC-SHA256";
const TERMINATOR = "aws4_request";
/** AWS allows this much clock skew between the signer and the service. */
export const MAX_SKEW_MS = 5 * 60 * 1000;

export interface AwsCredential {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: the request must carry this as X-Amz-Security-Token. */
  sessionToken?: string;
}

export interface SignedRequest {
  method: string;
  /** The request target as received: path and query, still percent-encoded. */
  target: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Expectation {
  service: string;
  region: string;
  now: number;
  credential(accessKeyId: string): AwsCredential | undefined;
}

export type Verdict =
  | { ok: true; credential: AwsCredential }
  | { ok: false; status: number; errorType: string; message: string };

const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN = "The security token included in the request is invalid.";

function deny(errorType: string, message: string, status = 403): Verdict {
  return { ok: false, status, errorType, message };
}

/** Checks a request's `Authorization: AWS4-HMAC-SHA256 …` header the way an AWS service does. */
export function verifySigV4(req: SignedRequest, expect: Expectation): Verdict {
  const authorization = header(req.headers, "authorization");
  if (authorization === undefined || authorization === "") {
    return deny("MissingAuthenticationTokenException", "Missing Authentication Token");
  }
  const space = authorization.indexOf(" ");
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return deny(
      "IncompleteSignatureException",
      `Unsupported AWS 'algorithm': '${algorithm.slice(0, 40)}'.`,
    );
  }
  const fields = parseAuthorization(authorization.slice(space + 1));
  for (const name of ["Credential", "SignedHeaders", "Signature"]) {
    if (fields[name] === undefined) {
      return deny(
        "IncompleteSignatureException",
        `Authorization header requires '${name}' parameter.`,
      );
    }
  }
  const scope = fields.Credential!.split("/");
  if (scope.length !== 5) {
    return deny(
      "IncompleteSignatureException",
      "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.",
    );
  }
  const [accessKeyId, date, region, service, terminator] = scope as [
    string,
    string,
    string,
    string,
    string,
  ];
  const amzDate = header(req.headers, "x-amz-date");
  if (amzDate === undefined) {
    return deny(
      "IncompleteSignatureException",
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
  }

  const credential = expect.credential(accessKeyId);
  if (credential === undefined) return deny("UnrecognizedClientException", INVALID_TOKEN);
  const token = header(req.headers, "x-amz-security-token");
  if (credential.sessionToken !== token) {
    // Temporary keys need their token; a token never belongs to long-term keys.
    return deny("UnrecognizedClientException", INVALID_TOKEN);
  }

  const signingTime = parseAmzDate(amzDate);
  if (signingTime === undefined) {
    return deny(
      "IncompleteSignatureException",
      `Date must be in ISO-8601 'basic format'. Got '${amzDate.slice(0, 40)}'.`,
    );
  }
  if (date !== amzDate.slice(0, 8)) {
    return deny(
      "InvalidSignatureException",
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${date.slice(0, 8)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  if (region !== expect.region)
    return deny("InvalidSignatureException", "Credential should be scoped to a valid region. ");
  if (service !== expect.service) {
    return deny(
      "InvalidSignatureException",
      `Credential should be scoped to correct service: '${expect.service}'. `,
    );
  }
  if (terminator !== TERMINATOR) {
    return deny(
      "InvalidSignatureException",
      `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${terminator.slice(0, 40)}'. `,
    );
  }
  if (expect.now - signingTime > MAX_SKEW_MS) {
    return deny(
      "InvalidSignatureException",
      `Signature expired: ${amzDate} is now earlier than ${formatAmzDate(expect.now - MAX_SKEW_MS)} (${formatAmzDate(expect.now)} - 5 min.)`,
    );
  }
  if (signingTime - expect.now > MAX_SKEW_MS) {
    return deny(
      "InvalidSignatureException",
      `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(expect.now + MAX_SKEW_MS)} (${formatAmzDate(expect.now)} + 5 min.)`,
    );
  }

  const signedHeaders = fields.SignedHeaders!.split(";");
  // Over HTTP/2 the SDK signs the `:authority` pseudo-header in place of `host`.
  if (!signedHeaders.includes("host") && !signedHeaders.includes(":authority")) {
    return deny(
      "InvalidSignatureException",
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
  }
  const canonical = canonicalRequest(req, signedHeaders);
  const expected = signature(
    credential.secretAccessKey,
    amzDate,
    `${date}/${region}/${service}/${TERMINATOR}`,
    canonical,
  );
  const given = Buffer.from(fields.Signature!);
  if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
    return deny("InvalidSignatureException", SIGNATURE_MISMATCH);
  }
  return { ok: true, credential };
}

/** `Credential=…, SignedHeaders=…, Signature=…` → its fields. */
function parseAuthorization(rest: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of rest.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/**
 * The canonical request: method, canonical URI (the received path normalized, each segment
 * URI-encoded again, so `%3A` becomes `%253A`), canonical query, the signed headers'
 * `name:value` lines, the signed-header list and the hex SHA-256 of the body as received.
 */
export function canonicalRequest(req: SignedRequest, signedHeaders: readonly string[]): string {
  const q = req.target.indexOf("?");
  const path = q < 0 ? req.target : req.target.slice(0, q);
  const query = q < 0 ? "" : req.target.slice(q + 1);
  const lines = signedHeaders
    .map((name) => `${name}:${canonicalHeaderValue(req.headers[name])}\n`)
    .join("");
  return [
    req.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query),
    lines,
    signedHeaders.join(";"),
    createHash("sha256").update(req.body).digest("hex"),
  ].join("\n");
}

export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const trailing = segments.length > 0 && path.endsWith("/") ? "/" : "";
  return `/${segments.map(uriEncode).join("/")}${trailing}`;
}

function canonicalQuery(query: string): string {
  if (query === "") return "";
  const pairs = query.split("&").map((pair) => {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? "" : pair.slice(eq + 1);
    return [uriEncode(safeDecode(key)), uriEncode(safeDecode(value))] as const;
  });
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** RFC 3986 encoding as SigV4 defines it: unreserved characters stay, every other byte is %XX. */
function uriEncode(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function canonicalHeaderValue(value: string | string[] | undefined): string {
  const joined = Array.isArray(value) ? value.join(",") : (value ?? "");
  return joined.trim().replace(/\s+/g, " ");
}

/** The hex signature of a canonical request (string to sign, then the derived key). */
export function signature(
  secretAccessKey: string,
  amzDate: string,
  scope: string,
  canonical: string,
): string {
  const stringToSign = [
    ALGORITHM,
    amzDate,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  const [date, region, service] = scope.split("/") as [string, string, string];
  return createHmac("sha256", signingKey(secretAccessKey, date, region, service))
    .update(stringToSign)
    .digest("hex");
}

export function signingKey(
  secretAccessKey: string,
  date: string,
  region: string,
  service: string,
): Buffer {
  const kDate = createHmac("sha256", `AWS4${secretAccessKey}`).update(date).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  return createHmac("sha256", kService).update(TERMINATOR).digest();
}

/** `20150830T123600Z` → epoch ms. */
function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
}

export function formatAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}
