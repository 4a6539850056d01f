/**
 * `GET|HEAD /ui/…`: the operator console's static files, built from `ui/` into `ui/dist/`
 * (by `npm ci`'s prepare step and `npm run dev`). Read into memory once at start (the whole
 * console is a few tens of kilobytes): no file system access per request, so no path from
 * a URL ever reaches the disk. The page is one `index.html` (never cached: it names the
 * current assets) and content-hashed assets under `/ui/assets/` (cached for a year).
 * Pages are routed in the browser (`/ui/#/playground`), so the server knows only these
 * files. Every answer carries a strict Content-Security-Policy: scripts, styles and
 * fetches from this origin only, images from it or `data:` URLs, never framed.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GatewayError } from "../errors/errors.ts";
import { toConnectError } from "../errors/render.ts";
import { clientRequestId } from "./universal.ts";
import { writeOpenAIError } from "./rest.ts";
import type { NodeRequest, NodeResponse } from "./universal.ts";

export const CONSOLE_PATH = "/ui";

/** Where `ui/build.ts` writes the console. */
export const CONSOLE_DIST = fileURLToPath(new URL("../../ui/dist/", import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

interface Asset {
  body: Buffer;
  type: string;
  cacheControl: string;
}

/** The console's files by URL path; empty when the console was not built. */
export type ConsoleFiles = ReadonlyMap<string, Asset>;

export function loadConsole(dir = CONSOLE_DIST): ConsoleFiles {
  const files = new Map<string, Asset>();
  let index: Buffer;
  try {
    index = readFileSync(`${dir}index.html`);
  } catch {
    return files;
  }
  files.set(`${CONSOLE_PATH}/`, { body: index, type: TYPES[".html"]!, cacheControl: "no-cache" });
  for (const name of readdirSync(`${dir}assets`)) {
    const type = TYPES[name.slice(name.lastIndexOf("."))];
    if (type === undefined) continue;
    files.set(`${CONSOLE_PATH}/assets/${name}`, {
      body: readFileSync(`${dir}assets/${name}`),
      type,
      // The name carries the content's hash: a new build is a new name.
      cacheControl: "public, max-age=31536000, immutable",
    });
  }
  return files;
}

/** Whether `path` is the console's (`/ui` or under `/ui/`). */
export function isConsolePath(path: string): boolean {
  return path === CONSOLE_PATH || path.startsWith(`${CONSOLE_PATH}/`);
}

export async function serveConsole(
  req: NodeRequest,
  res: NodeResponse,
  path: string,
  files: ConsoleFiles,
): Promise<void> {
  req.resume();
  const method = req.method ?? "GET";
  if (method !== "GET" && method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return fail(
      req,
      res,
      new GatewayError("invalid_request", `Method ${method} is not allowed here; use GET.`, {
        httpStatus: 405,
      }),
    );
  }
  if (path === CONSOLE_PATH) {
    res.writeHead(308, { ...HEADERS, location: `${CONSOLE_PATH}/` });
    res.end();
    return;
  }
  const asset = files.get(path);
  if (asset === undefined) {
    if (path === `${CONSOLE_PATH}/`) {
      res.writeHead(503, { ...HEADERS, "content-type": "text/plain; charset=utf-8" });
      res.end(
        "The console is not built: run `npm ci` (or `node ui/build.ts`) in the repository.\n",
      );
      return;
    }
    return fail(req, res, new GatewayError("not_found", `Unknown console file: ${path}.`));
  }
  res.writeHead(200, {
    ...HEADERS,
    "content-type": asset.type,
    "content-length": asset.body.length,
    "cache-control": asset.cacheControl,
  });
  res.end(method === "HEAD" ? undefined : asset.body);
}

function fail(req: NodeRequest, res: NodeResponse, err: GatewayError): void {
  for (const [name, value] of Object.entries(HEADERS)) res.setHeader(name, value);
  writeOpenAIError(res, toConnectError(err), clientRequestId(req));
}
