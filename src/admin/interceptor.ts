/**
 * The management API is the master key's alone: a call to AdminService with any other key
 * is 403 (a missing or wrong key is already 401 from the auth interceptor, before this one).
 * The master key was recognised by the key ring, in constant time. Admin calls cost nothing.
 */
import type { Interceptor } from "@connectrpc/connect";
import { kKey } from "../auth/interceptor.ts";
import { kCallInfo } from "../call/call-info.ts";
import { GatewayError } from "../errors/errors.ts";
import { AdminService } from "../gen/imagegate/admin/v1/admin_pb.js";

export function adminInterceptor(hasMasterKey: boolean): Interceptor {
  return (next) => (req) => {
    if (req.service.typeName !== AdminService.typeName) return next(req);
    const info = req.contextValues.get(kCallInfo);
    if (info) info.costUsd = 0;
    if (!hasMasterKey) {
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
