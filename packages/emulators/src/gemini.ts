/**
 * An in-process emulator of Google AI Studio (the Gemini API) image generation:
 * `POST /v1beta/models/{model}:predict` (Imagen) and `:generateContent` (Gemini image
 * models), authenticated by `x-goog-api-key` (or `?key=`). Used by the tests and by
 * `npm run dev`. Bodies, answers and refusals are shared with the Vertex emulator
 * (google-images.ts, which also says how to provoke refusals).
 *
 * Test hooks: `faults` (or `POST /__emulator/faults`, `DELETE` to clear) injects errors,
 * latency, hangs and resets, matched by the model in the path; `googleFaults` builds the
 * usual ones. `requests` records every API call, newest last.
 */
import type http from "node:http";
import { FaultQueue } from "./faults.ts";
import {
  AI_STUDIO_MODELS,
  beginCall,
  errorInfo,
  GoogleApiError,
  GoogleImageService,
  googleFaultControl,
  googleFaults,
  listenGoogle,
  notFound,
  type RecordedRequest,
  sendGoogleJson,
} from "./google-images.ts";

export { googleFaults };
export type { RecordedRequest };

const API_VERSION = "v1beta";
const PATH = /^\/(v1beta|v1)\/models\/([^/:]+):(predict|generateContent)$/;

export interface GeminiEmulatorOptions {
  apiKey: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

export interface GeminiEmulator {
  /** e.g. http://127.0.0.1:PORT/v1beta — what `api_base` / GEMINI_API_BASE takes. */
  baseUrl: string;
  port: number;
  faults: FaultQueue;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startGeminiEmulator(opts: GeminiEmulatorOptions): Promise<GeminiEmulator> {
  const faults = new FaultQueue();
  const requests: RecordedRequest[] = [];
  const service = new GoogleImageService("ai-studio");

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    if (url.pathname === "/__emulator/faults") return googleFaultControl(faults, req, res);
    const call = await beginCall({ faults, requests }, req, res, url, () => {
      const match = PATH.exec(url.pathname);
      if (match === null) return undefined;
      return { version: match[1]!, model: decodeURIComponent(match[2]!), method: match[3]! };
    });
    if (call === undefined) return;
    const { version, model, method } = call.route;
    authenticate(req, url, opts.apiKey);
    const rules = AI_STUDIO_MODELS[model];
    const kind = method === "predict" ? "imagen" : "gemini";
    if (rules === undefined || rules.kind !== kind) {
      throw notFound(
        `models/${model} is not found for API version ${version}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
      );
    }
    sendGoogleJson(res, 200, service.answer(model, rules, call.body));
  }

  const server = await listenGoogle(handle, opts);
  return {
    baseUrl: `${server.origin}/${API_VERSION}`,
    port: server.port,
    faults,
    requests,
    close: server.close,
  };
}

/** AI Studio's answers: no key is 403; a wrong key is 400 API_KEY_INVALID (not 401). */
function authenticate(req: http.IncomingMessage, url: URL, apiKey: string): void {
  const header = req.headers["x-goog-api-key"];
  const key =
    (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get("key") ?? undefined;
  if (key === undefined || key === "") {
    throw new GoogleApiError(
      403,
      "PERMISSION_DENIED",
      "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
    );
  }
  if (key !== apiKey) {
    throw new GoogleApiError(
      400,
      "INVALID_ARGUMENT",
      "API key not valid. Please pass a valid API key.",
      [
        errorInfo("API_KEY_INVALID", "googleapis.com", {
          service: "generativelanguage.googleapis.com",
        }),
        {
          "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
          locale: "en-US",
          message: "API key not valid. Please pass a valid API key.",
        },
      ],
    );
  }
}
