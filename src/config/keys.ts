/**
 * The `keys:` section's rules beyond its schema. A key's id is its SHA-256 in lowercase
 * hex (spend and rpm limits are kept by it; the management API calls it `token`); its name
 * is what logs, metrics and messages show. Both must be unique, or two keys would share a
 * budget or be indistinguishable in every record.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "./env.ts";
import type { KeyConfig } from "./schema.ts";

/** The name the master key goes by in logs and metrics; no configured key may take it. */
export const MASTER_KEY_NAME = "master";

/** A configured key's id: the hex SHA-256 it was given, or that of the key itself. */
export function keyId(k: KeyConfig): string {
  return k.key_sha256 !== undefined ? k.key_sha256.toLowerCase() : sha256Hex(k.key!);
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Throws unless every key has its own name and its own key, and none is the master's. */
export function checkKeys(
  keys: readonly KeyConfig[],
  masterKey: string | undefined,
  source: string,
): void {
  const names = new Map<string, number>();
  const ids = new Map<string, number>();
  if (masterKey !== undefined) ids.set(sha256Hex(masterKey), -1);
  for (const [i, k] of keys.entries()) {
    if (k.name === MASTER_KEY_NAME) {
      throw new ConfigError(
        `${source}: keys[${i}].name: '${MASTER_KEY_NAME}' is the master key's name in logs and metrics; give this key another name`,
      );
    }
    const sameName = names.get(k.name);
    if (sameName !== undefined) {
      throw new ConfigError(
        `${source}: keys[${i}].name: '${k.name}' is also the name of keys[${sameName}]; key names must be unique`,
      );
    }
    names.set(k.name, i);
    const id = keyId(k);
    const sameKey = ids.get(id);
    if (sameKey !== undefined) {
      // Never the key itself in the message: which entries collide is enough.
      throw new ConfigError(
        sameKey === -1
          ? `${source}: keys[${i}] ('${k.name}') is the master key; give it its own key`
          : `${source}: keys[${i}] ('${k.name}') is the same key as keys[${sameKey}] ('${keys[sameKey]!.name}'); each key must be different`,
      );
    }
    ids.set(id, i);
  }
}
