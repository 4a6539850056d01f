/**
 * Gateway keys: the master key and the configured keys, held as SHA-256 digests and
 * compared in constant time, and the keys made through the management API (`setApiKeys`:
 * a map from digest to key, refreshed from the database). A key is known by its id (the
 * hex digest: what spend and rpm limits are kept by, and the management API's `token`) and
 * by its name (what logs, metrics and messages show); the key itself never leaves this file.
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
  /** Set for the master key only (the one that may call the management API). */
  master?: true;
}

/** A key made through the management API, as authentication needs it. */
export interface ApiKey {
  identity: KeyIdentity;
  blocked: boolean;
  /** Epoch ms after which it is refused. */
  expires: number | undefined;
}

/** What a presented key is: a key's identity, or why a known key is refused. */
export type KeyLookup =
  | { identity: KeyIdentity; refused?: undefined }
  | { identity?: undefined; refused: "blocked" | "expired"; name: string };

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
          master: true,
        },
      });
    }
  }

  /** With no key configured the gateway is open. */
  get open(): boolean {
    return this.entries.length === 0;
  }

  /** Replaces the management API's keys (by token), as the database holds them now. */
  setApiKeys(keys: ReadonlyMap<string, ApiKey>): void {
    this.apiKeys = keys;
  }

  /** Adds one of the management API's keys (found in the database before the next reload). */
  addApiKey(token: string, key: ApiKey): void {
    this.apiKeys = new Map(this.apiKeys).set(token, key);
  }

  private apiKeys: ReadonlyMap<string, ApiKey> = new Map();

  /** The identity of a presented key that may be used now, else undefined. */
  authenticate(presented: string, now = Date.now()): KeyIdentity | undefined {
    return this.lookup(presented, now)?.identity;
  }

  /**
   * What a presented key is: the master key and the config's keys compared in constant
   * time; the API's keys found by their digest (a map lookup on the SHA-256, which tells
   * nothing about any key). Undefined: no such key.
   */
  lookup(presented: string, now = Date.now()): KeyLookup | undefined {
    const digest = sha256(presented);
    let found: KeyIdentity | undefined;
    for (const entry of this.entries) {
      // No early exit: the time taken does not depend on which key matched.
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.identity;
    }
    if (found !== undefined) return { identity: found };
    const api = this.apiKeys.get(digest.toString("hex"));
    if (api === undefined) return undefined;
    if (api.blocked) return { refused: "blocked", name: api.identity.name };
    if (api.expires !== undefined && api.expires <= now)
      return { refused: "expired", name: api.identity.name };
    return { identity: api.identity };
  }
}

/** The bearer token of an `authorization` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}
