/**
 * The gateway's API as the console calls it: same origin, the key (when there is one) from
 * session storage as a bearer token, never in a URL or a cookie. Answers are OpenAI's
 * shapes; an error answer's `error.message` is what the console shows.
 */
const KEY_ITEM = "imagegate.console.key";

export interface ApiError {
  message: string;
  type?: string;
  code?: string | null;
}

export type ApiAnswer<T> =
  | { ok: true; status: number; data: T; headers: Headers }
  | { ok: false; status: number; error: ApiError; headers?: Headers };

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

/** One API call; `key` overrides the stored key (sign-in checks a key before keeping it). */
export async function call<T>(
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; key?: string | null; signal?: AbortSignal } = {},
): Promise<ApiAnswer<T>> {
  const key = options.key === undefined ? storedKey() : options.key;
  const headers: Record<string, string> = { accept: "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
      cache: "no-store",
      signal: options.signal,
    });
  } catch (e) {
    return { ok: false, status: 0, error: { message: `The gateway did not answer: ${String(e)}` } };
  }
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    json = undefined;
  }
  if (res.ok && json !== undefined)
    return { ok: true, status: res.status, data: json as T, headers: res.headers };
  const error = (json as { error?: ApiError } | undefined)?.error;
  return {
    ok: false,
    status: res.status,
    headers: res.headers,
    error: error?.message ? error : { message: `HTTP ${res.status} ${res.statusText}` },
  };
}

export interface ModelEntry {
  id: string;
  owned_by: string;
}

export function listModels(key?: string | null): Promise<ApiAnswer<{ data: ModelEntry[] }>> {
  return call("GET", "/v1/models", { key });
}

/** A query string from the values given (undefined and "" left out). */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params))
    if (value !== undefined && value !== "") q.set(name, String(value));
  const text = q.toString();
  return text === "" ? "" : `?${text}`;
}

// The management API's answers, as the gateway writes them (README, Administration).

export interface SpendPoint {
  start: string;
  group?: string;
  key_alias?: string;
  requests: number;
  images: number;
  errors: number;
  spend: number;
}

export interface SpendSeries {
  bucket: "hour" | "day";
  points: SpendPoint[];
}

export interface DeploymentStats {
  id: string;
  model_name: string;
  provider: string;
  model: string;
  in_rotation: boolean;
  cooldown_until?: string;
  in_flight: number;
  attempts: number;
  failures: number;
  error_rate?: number;
  latency_p50_ms?: number;
  latency_p95_ms?: number;
}

export interface ModelStats {
  window_seconds: number;
  data: DeploymentStats[];
}

export interface DeploymentInfo {
  model_name: string;
  model_info: { id: string; output_cost_per_image?: number; base_model?: string };
}

export interface KeyInfo {
  key_alias?: string;
  spend: number;
  max_budget?: number;
  models: string[];
  rpm_limit?: number;
  expires?: string;
  budget_duration?: string;
  budget_reset_at?: string;
  blocked: boolean;
  created_at: string;
  source: "api" | "config";
}

export interface NewKey {
  key: string;
  token: string;
  key_alias?: string;
}

export interface SpendLog {
  request_id: string;
  api_key?: string;
  key_alias?: string;
  end_user?: string;
  model?: string;
  model_id?: string;
  provider?: string;
  status: "success" | "failure";
  spend: number;
  images: number;
  size?: string;
  quality?: string;
  startTime: string;
  endTime: string;
  attempts: number;
  /** Each upstream attempt in order (empty for rows written before it was recorded). */
  attempt_log?: { deployment: string; error?: string }[];
}
