/**
 * Gateway keys: the master key and the configured keys, held as SHA-256 digests and
 * compared in constant time. A key is known by its id (the hex digest: what spend and rpm
 * limits are kept by, and the management API's `token`) and by its name (what logs,
 * metrics and messages show); the key itself never leaves this file.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { keyId, MASTER_KEY_NAME } from "../config/keys.ts";
import type { KeyConfig } from "../config/schema.ts";

export { MASTER_KEY_NAME };

export interface KeyIdentity {
  /** The key's SHA-256 in lowercase hex: spend, budgets and rpm limits are kept by it. */
  id: string;
  /** The key's name, as metrics and logs know it ("master" for the master key); unique. */
  name: string;
  /** Model groups (or direct provider/model names) it may use; undefined: all. */
  models: ReadonlySet<string> | undefined;
  rpmLimit: number | undefined;
  maxBudget: number | undefined;
}

interface Entry {
  digest: Buffer;
  identity: KeyIdentity;
}

export function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

export class KeyRing {
  private readonly entries: Entry[];

  constructor(masterKey: string | undefined, keys: readonly KeyConfig[]) {
    this.entries = keys.map((k) => {
      const id = keyId(k);
      return {
        digest: Buffer.from(id, "hex"),
        identity: {
          id,
          name: k.name,
          models: k.models === undefined ? undefined : new Set(k.models),
          rpmLimit: k.rpm_limit,
          maxBudget: k.max_budget,
        },
      };
    });
    if (masterKey !== undefined) {
      const digest = sha256(masterKey);
      this.entries.push({
        digest,
        identity: {
          id: digest.toString("hex"),
          name: MASTER_KEY_NAME,
          models: undefined,
          rpmLimit: undefined,
          maxBudget: undefined,
        },
      });
    }
  }

  /** With no key configured the gateway is open. */
  get open(): boolean {
    return this.entries.length === 0;
  }

  /** The identity of a presented key, comparing against every key in constant time. */
  authenticate(presented: string): KeyIdentity | undefined {
    const digest = sha256(presented);
    let found: KeyIdentity | undefined;
    for (const entry of this.entries) {
      // No early exit: the time taken does not depend on which key matched.
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.identity;
    }
    return found;
  }
}

/** The bearer token of an `authorization` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
