/**
 * Gateway keys on every protocol: REST's `Authorization: Bearer`, gRPC's and Connect's
 * `authorization` metadata, checked from the headers before the body is read (`authenticate`,
 * called by the gateway's dispatch; the interceptor finds the identity in the call's
 * context). Then, in the interceptor, the key's rpm limit, kept by key id. The budget is the service's to reserve and settle (only it knows what the
 * request may cost, see ledger.ts); this interceptor gives each call its `CallBudget` and
 * releases whatever the call still holds when it ends, however it ends.
 */
import { createContextKey, type Interceptor } from "@connectrpc/connect";
import { GatewayError } from "../errors/errors.ts";
import { OPEN_SERVICES } from "../call/open-services.ts";
import { kCallInfo } from "../call/call-info.ts";
import { watchStream } from "../call/stream-hooks.ts";
import { bearerToken, type KeyIdentity, type KeyRing } from "./keys.ts";
import { CallBudget, type Ledger } from "./ledger.ts";
import type { KeyRateLimiter } from "./shared-rate.ts";

export const kKey = createContextKey<KeyIdentity | undefined>(undefined, {
  description: "imagegate key",
});

/** The call's budget (absent on an open gateway). */
export const kBudget = createContextKey<CallBudget | undefined>(undefined, {
  description: "imagegate budget",
});

type Next = Parameters<Interceptor>[0];

export function authInterceptor(keys: KeyRing, ledger: Ledger, rpm: KeyRateLimiter): Interceptor {
  // Without keys a call passes straight through, with no async step of its own.
  return (next) => (req) =>
    keys.open || OPEN_SERVICES.has(req.service.typeName)
      ? next(req)
      : authenticated(req, next, keys, ledger, rpm);
}

/**
 * The identity of the key an `authorization` header presents, or the 401. The gateway calls
 * it from the request's headers before any body is read; the interceptor then finds the
 * identity in the call's context (and calls it itself for a call that skipped that stage).
 */
export function authenticate(keys: KeyRing, authorization: string | null | undefined): KeyIdentity {
  const token = bearerToken(authorization ?? null);
  const found = token === undefined ? undefined : keys.lookup(token);
  if (found?.identity !== undefined) return found.identity;
  if (found?.refused !== undefined) {
    throw new GatewayError(
      "authentication",
      found.refused === "blocked"
        ? `Key '${found.name}' is blocked.`
        : `Key '${found.name}' has expired.`,
      { code: found.refused === "blocked" ? "key_blocked" : "key_expired" },
    );
  }
  throw new GatewayError(
    "authentication",
    token === undefined
      ? "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' (REST) or as 'authorization' metadata (gRPC, Connect)."
      : "Incorrect API key provided.",
  );
}

async function authenticated(
  req: Parameters<Next>[0],
  next: Next,
  keys: KeyRing,
  ledger: Ledger,
  rpm: KeyRateLimiter,
) {
  const identity =
    req.contextValues.get(kKey) ?? authenticate(keys, req.header.get("authorization"));
  const info = req.contextValues.get(kCallInfo);
  if (info) info.keyName = identity.name;
  req.contextValues.set(kKey, identity);
  if (identity.rpmLimit !== undefined) {
    let admitted = rpm.admit(identity.id, identity.rpmLimit);
    // Only a shared limiter answers later (one round trip to Redis).
    if (admitted instanceof Promise) admitted = await admitted;
    if (!admitted.ok) {
      throw new GatewayError(
        "rate_limit",
        `Rate limit reached for key '${identity.name}': ${identity.rpmLimit} requests per minute.`,
        {
          code: "key_rate_limit_exceeded",
          retryAfterSeconds: admitted.retryAfterSeconds,
        },
      );
    }
  }
  const budget = new CallBudget(ledger, identity);
  req.contextValues.set(kBudget, budget);
  let streaming = false;
  try {
    const res = await next(req);
    if (!res.stream) return res;
    // A stream holds its budget until its last event: released (what was not settled) then.
    streaming = true;
    return { ...res, message: watchStream(res.message, { end: () => budget.release() }) };
  } finally {
    if (!streaming) await budget.release();
  }
}

/**
 * 403 unless the key may use `model` (a group, or a direct name it lists), or the alias the
 * request named for it.
 */
export function checkModelAllowed(
  identity: KeyIdentity | undefined,
  model: string,
  alias?: string,
): void {
  if (identity?.models === undefined || identity.models.has(model)) return;
  if (alias !== undefined && identity.models.has(alias)) return;
  throw new GatewayError(
    "permission",
    `Key '${identity.name}' is not allowed to use model '${alias ?? model}'.`,
    { param: "model" },
  );
}
