/**
 * The management API is the master key's alone: a call to AdminService with any other key
 * is 403 (a missing or wrong key is already 401 from the auth interceptor, before this one).
 * The master key was recognised by the key ring, in constant time. Admin calls cost nothing.
 *
 * One exception: on an open gateway (no key configured at all, as `npm run dev`), where
 * every image call is open anyway, the read-only rpcs (declared `NO_SIDE_EFFECTS` in the
 * proto) are open too, so the console can show what the gateway does. Changes stay refused.
 */
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import { kCallInfo } from "../call/call-info.ts";
import { GatewayError } from "../errors/errors.ts";
import { AdminService } from "../gen/imagegate/admin/v1/admin_pb.js";

export interface AdminAccess {
  hasMasterKey: boolean;
  /** No key configured: the gateway serves everyone. */
  open: boolean;
}

export function adminInterceptor(access: AdminAccess): Interceptor {
  return (next) => (req) => {
    if (req.service.typeName !== AdminService.typeName) return next(req);
    const info = req.contextValues.get(kCallInfo);
    if (info) info.costUsd = 0;
    if (access.open && req.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS)
      return next(req);
    if (!access.hasMasterKey) {
      throw new GatewayError(
        "permission",
        "The management API is off: set general_settings.master_key and call it with that key.",
        { code: "admin_disabled" },
      );
    }
    const identity = req.contextValues.get(kKey);
    if (identity?.master !== true) {
      throw new GatewayError(
        "permission",
        `Key '${identity?.name ?? "none"}' may not use the management API; only the master key may.`,
        { code: "not_master_key" },
      );
    }
    return next(req);
  };
}
