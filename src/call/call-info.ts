/**
 * Per-call facts the service learns (which model answered, which deployment, how many
 * attempts) and the edge reports as response headers or metadata, errors included.
 */
import { createContextKey } from "@connectrpc/connect";
import type { BufferLease } from "../runtime/buffer-pool.ts";

export type WireProtocol = "grpc" | "grpc-web" | "connect" | "rest";

/** Something that happened during the call, kept for the request's span (retries, fallbacks). */
export interface CallEvent {
  name: string;
  time: number;
  attributes: Record<string, string | number>;
}

/**
 * One upstream attempt as the spend log keeps it (errors.ts's AttemptRecord is the router's
 * record of a failed one, for the error it ends with).
 */
export interface AttemptLogEntry {
  deployment: string;
  /** The error's code (or kind) when this attempt failed; absent when it answered. */
  error?: string;
}

export interface CallInfo {
  requestId: string;
  protocol: WireProtocol;
  model?: string;
  deployment?: string;
  provider?: string;
  attempts: number;
  /** Each upstream attempt in order: the deployment, and why it failed when it did. */
  attemptLog?: AttemptLogEntry[];
  /** USD for this request; undefined while unknown (unpriced models included). */
  costUsd?: number;
  /** The model answered but has no price: its cost is unknown, not zero. */
  unpriced?: boolean;
  images?: number;
  size?: string;
  quality?: string;
  /** The gateway key's name (never the key). */
  keyName?: string;
  events: CallEvent[];
}

export const kCallInfo = createContextKey<CallInfo | undefined>(undefined, {
  description: "imagegate call info",
});
/** The request's pooled memory for large buffers, given back when its answer is written. */
export const kBufferLease = createContextKey<BufferLease | undefined>(undefined, {
  description: "imagegate buffer lease",
});
/** Set by the REST protocol (server/rest.ts) so the call is reported as REST, not Connect. */
export const kViaRest = createContextKey<boolean>(false, { description: "imagegate via REST" });

export const HEADER = {
  requestId: "x-request-id",
  model: "x-imagegate-model",
  deployment: "x-imagegate-deployment",
  attempts: "x-imagegate-attempts",
  cost: "x-imagegate-cost-usd",
} as const;

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The caller's `x-request-id` when it is a sane token, else a fresh one. */
export function requestIdFrom(given: string | null | undefined): string {
  return given != null && REQUEST_ID.test(given)
    ? given
    : `req_${crypto.randomUUID().replaceAll("-", "")}`;
}

export function writeCallHeaders(headers: Headers, info: CallInfo): void {
  headers.set(HEADER.requestId, info.requestId);
  headers.set(HEADER.attempts, String(info.attempts));
  if (info.model !== undefined) headers.set(HEADER.model, info.model);
  if (info.deployment !== undefined) headers.set(HEADER.deployment, info.deployment);
  if (info.costUsd !== undefined) headers.set(HEADER.cost, formatUsd(info.costUsd));
}

/** Decimal string without float noise (e.g. 0.16665, not 0.16665000000000002). */
export function formatUsd(usd: number): string {
  return String(Number(usd.toFixed(10)));
}
