#!/usr/bin/env node
/**
 * Small fixes to installed dependencies, applied by `npm install`/`npm ci` (the root
 * `postinstall` script) and idempotent: each names the exact version it was written for and
 * the exact text it replaces; on any other version, or text that differs, it changes
 * nothing and says so (the code works unpatched, only slower). See patches/README.md.
 *
 *   node patches/apply.mjs [--root DIR] [--check]
 *
 * --root: the directory holding node_modules (default: this repository). --check: change
 * nothing, exit 1 if a patch is not applied. Files are replaced (a new file renamed over the
 * old), never written in place, so a node_modules made of hard links to another copy
 * leaves that copy alone.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const MARK = "imagegate patch: envelope-headroom";

/**
 * connect-es frames every message in a new array 5 bytes longer, copying the message into
 * it: for a 1.5 MB image, 1.5 MB of fresh memory per answer, the gateway's largest cost on
 * gRPC (bench/PROFILE.md). Patched: a message whose serializer reserved 5 free bytes in front
 * of it (listed in a WeakSet under a global symbol, each used once) is framed in place.
 * Any other message is framed as before.
 */
const ENVELOPE_ESM = {
  before: `export function encodeEnvelope(flags, data) {
    const bytes = new Uint8Array(data.length + 5);`,
  after: `export function encodeEnvelope(flags, data) {
    // ${MARK} (patches/apply.mjs): a message with 5 reserved bytes before it is framed in place.
    const headroom = globalThis[Symbol.for("connectrpc.envelope.headroom")];
    if (headroom !== undefined && data.byteOffset >= 5 && headroom.delete(data)) {
        const framed = new Uint8Array(data.buffer, data.byteOffset - 5, data.length + 5);
        const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
        view.setUint8(0, flags);
        view.setUint32(1, data.length);
        return framed;
    }
    const bytes = new Uint8Array(data.length + 5);`,
};
const ENVELOPE_CJS = {
  before: ENVELOPE_ESM.before.replace("export function", "function"),
  after: ENVELOPE_ESM.after.replace("export function", "function"),
};

export const PATCHES = [
  {
    name: "@connectrpc/connect envelope headroom",
    pkg: "@connectrpc/connect",
    version: "2.2.0",
    files: {
      "dist/esm/protocol/envelope.js": ENVELOPE_ESM,
      "dist/cjs/protocol/envelope.js": ENVELOPE_CJS,
    },
  },
];

/** Applies (or with `check`, only looks at) every patch under `root`; returns messages and whether all are applied. */
export function applyPatches(root, { check = false } = {}) {
  const messages = [];
  let ok = true;
  for (const p of PATCHES) {
    const dir = path.join(root, "node_modules", p.pkg);
    const pkgFile = path.join(dir, "package.json");
    if (!existsSync(pkgFile)) {
      messages.push(`${p.name}: ${p.pkg} is not installed; skipped`);
      ok = false;
      continue;
    }
    const version = JSON.parse(readFileSync(pkgFile, "utf8")).version;
    if (version !== p.version) {
      messages.push(
        `${p.name}: ${p.pkg} is ${version}, the patch is for ${p.version}; not applied`,
      );
      ok = false;
      continue;
    }
    for (const [rel, { before, after }] of Object.entries(p.files)) {
      const file = path.join(dir, rel);
      const text = readFileSync(file, "utf8");
      if (text.includes(after)) continue;
      const at = text.indexOf(before);
      if (at === -1 || text.indexOf(before, at + 1) !== -1) {
        messages.push(`${p.name}: ${rel} does not read as expected; not applied`);
        ok = false;
        continue;
      }
      if (check) {
        messages.push(`${p.name}: ${rel} is not patched`);
        ok = false;
        continue;
      }
      const tmp = `${file}.imagegate-patch-${process.pid}`;
      writeFileSync(tmp, text.slice(0, at) + after + text.slice(at + before.length));
      renameSync(tmp, file);
      messages.push(`${p.name}: ${rel} patched`);
    }
  }
  return { ok, messages };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--root");
  const root =
    i >= 0
      ? path.resolve(args[i + 1])
      : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const check = args.includes("--check");
  const { ok, messages } = applyPatches(root, { check });
  for (const m of messages) process.stderr.write(`patches: ${m}\n`);
  // Installing never fails over a patch (the code works without it); --check does.
  process.exit(check && !ok ? 1 : 0);
}
