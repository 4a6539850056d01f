/**
 * `GET|HEAD /v1/images/files/<id>.<ext>?expires=…&sig=…`: serves an image the gateway
 * stored, to anyone holding its signed URL. The name must have the exact shape of a
 * stored name (anything else, `..` and percent-encoding included, is a 404 before any
 * lookup); then the signature decides (403, the same for every name, so ids cannot be
 * probed); then the store (404 once the image is gone).
 */
import { pipeline } from "node:stream/promises";
import { GatewayError } from "../errors/errors.ts";
import { toConnectError } from "../errors/render.ts";
import { FILES_PATH, type ImageFiles } from "../store/files.ts";
import { parseImageName } from "../store/store.ts";
import { clientRequestId, header } from "./universal.ts";
import { writeOpenAIError } from "./rest.ts";
import type { NodeRequest, NodeResponse } from "./universal.ts";

/**
 * Served images are untrusted bytes from an upstream (SVG can carry script): never
 * sniffed, never run as a page of the gateway's origin.
 */
const SAFETY_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
  "cross-origin-resource-policy": "cross-origin",
};

export async function serveImageFile(
  req: NodeRequest,
  res: NodeResponse,
  files: ImageFiles,
  now = Date.now,
): Promise<void> {
  req.resume();
  const requestId = clientRequestId(req);
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const name = (q === -1 ? url : url.slice(0, q)).slice(FILES_PATH.length);
  const method = req.method ?? "GET";
  if (method !== "GET" && method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return fail(
      res,
      requestId,
      new GatewayError("invalid_request", `Method ${method} is not allowed here; use GET.`, {
        httpStatus: 405,
      }),
    );
  }
  if (parseImageName(name) === undefined) return fail(res, requestId, notFound());

  const found = await files.open(
    name,
    new URLSearchParams(q === -1 ? "" : url.slice(q + 1)),
    method === "GET",
  );
  if (found.status === 403) {
    return fail(
      res,
      requestId,
      new GatewayError("permission", "The image URL's signature is invalid or has expired."),
    );
  }
  if (found.status === 404) return fail(res, requestId, notFound());

  const { image, body } = found;
  const maxAge = Math.max(
    0,
    Math.floor((Math.min(found.urlExpiresAt, image.expiresAt) - now()) / 1000),
  );
  const headers: Record<string, string | number> = {
    ...SAFETY_HEADERS,
    etag: image.etag,
    "cache-control": `private, max-age=${maxAge}`,
    "x-request-id": requestId,
  };
  if (matches(header(req, "if-none-match"), image.etag)) {
    body?.destroy();
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-type": image.mediaType, "content-length": image.size });
  if (body === undefined) {
    res.end();
    return;
  }
  try {
    await pipeline(body, res);
  } catch {
    // The client went away, or the file vanished mid-read: the response is already cut.
    body.destroy();
    res.destroy();
  }
}

/** `If-None-Match`: `*`, or a list of tags, weak or strong (weak comparison, as for GET). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const bare = etag.replace(/^W\//, "");
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t.replace(/^W\//, "") === bare;
  });
}

function notFound(): GatewayError {
  return new GatewayError("not_found", "The image does not exist or has expired.", {
    code: "image_not_found",
  });
}

function fail(res: NodeResponse, requestId: string, err: GatewayError): void {
  writeOpenAIError(res, toConnectError(err), requestId);
}
