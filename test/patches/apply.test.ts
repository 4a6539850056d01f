/**
 * patches/apply.mjs: the connect-es envelope patch applied to a copy of the installed
 * package (never to node_modules itself), idempotent, refused on another version or other
 * text, never writing through a hard link; and the patched `encodeEnvelope` framing every
 * message as the original does, in place only for a message listed with free headroom.
 */
import {
  cpSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: plain JavaScript run by npm, without types
import { applyPatches, PATCHES } from "../../patches/apply.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const PKG = path.join(ROOT, "node_modules/@connectrpc/connect");
const ESM = "dist/esm/protocol/envelope.js";
const patch = (PATCHES as { files: Record<string, { before: string; after: string }> }[])[0]!;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of the installed connect-es, unpatched, under a fresh root (protobuf-es linked in). */
function pristineCopy(version = "2.2.0"): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "imagegate-patches-"));
  dirs.push(root);
  const dest = path.join(root, "node_modules/@connectrpc/connect");
  mkdirSync(path.dirname(dest), { recursive: true });
  cpSync(PKG, dest, { recursive: true });
  for (const [rel, { before, after }] of Object.entries(patch.files)) {
    const file = path.join(dest, rel);
    writeFileSync(file, readFileSync(file, "utf8").replace(after, before));
  }
  const pkg = JSON.parse(readFileSync(path.join(dest, "package.json"), "utf8"));
  writeFileSync(path.join(dest, "package.json"), JSON.stringify({ ...pkg, version }));
  symlinkSync(path.join(ROOT, "node_modules/@bufbuild"), path.join(root, "node_modules/@bufbuild"));
  return root;
}

function frame(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 5);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

describe("patches/apply.mjs", () => {
  it("patches connect-es 2.2.0's envelope once, replacing files rather than writing through links", () => {
    const root = pristineCopy();
    const file = path.join(root, "node_modules/@connectrpc/connect", ESM);
    const pristine = readFileSync(file, "utf8");
    const other = path.join(root, "hard-link-to-envelope.js");
    linkSync(file, other);
    expect(applyPatches(root, { check: true }).ok).toBe(false);
    const first = applyPatches(root);
    expect(first.ok).toBe(true);
    expect(first.messages).toEqual([
      expect.stringContaining("esm/protocol/envelope.js patched"),
      expect.stringContaining("cjs/protocol/envelope.js patched"),
    ]);
    expect(readFileSync(file, "utf8")).toContain("imagegate patch: envelope-headroom");
    expect(readFileSync(other, "utf8")).toBe(pristine);
    const again = applyPatches(root);
    expect(again).toEqual({ ok: true, messages: [] });
    expect(applyPatches(root, { check: true }).ok).toBe(true);
  });

  it("leaves another version, or text it does not know, as it is", () => {
    const other = pristineCopy("2.2.1");
    const file = path.join(other, "node_modules/@connectrpc/connect", ESM);
    const before = readFileSync(file, "utf8");
    const r = applyPatches(other);
    expect(r.ok).toBe(false);
    expect(r.messages[0]).toMatch(/is 2\.2\.1, the patch is for 2\.2\.0; not applied/);
    expect(readFileSync(file, "utf8")).toBe(before);

    const changed = pristineCopy();
    const f2 = path.join(changed, "node_modules/@connectrpc/connect", ESM);
    writeFileSync(f2, readFileSync(f2, "utf8").replace("data.length + 5", "data.length+5"));
    const r2 = applyPatches(changed);
    expect(r2.ok).toBe(false);
    expect(r2.messages[0]).toMatch(/does not read as expected; not applied/);
  });

  it("frames every message as the original does; in place only when listed with headroom, once", async () => {
    const root = pristineCopy();
    applyPatches(root);
    const { encodeEnvelope } = (await import(
      pathToFileURL(path.join(root, "node_modules/@connectrpc/connect", ESM)).href
    )) as { encodeEnvelope(flags: number, data: Uint8Array): Uint8Array };
    const key = Symbol.for("connectrpc.envelope.headroom");
    const g = globalThis as Record<symbol, WeakSet<Uint8Array> | undefined>;
    g[key] ??= new WeakSet();
    const headroom = g[key]!;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: 8 }),
        fc.boolean(),
        (bytes, flags, offset, listed) => {
          const backing = new Uint8Array(offset + bytes.length + 3).fill(0xee);
          const data = backing.subarray(offset, offset + bytes.length);
          data.set(bytes);
          if (listed) headroom.add(data);
          const out = encodeEnvelope(flags, data);
          expect(Buffer.from(out).equals(Buffer.from(frame(flags, bytes)))).toBe(true);
          const inPlace = listed && offset >= 5;
          expect(out.buffer === backing.buffer).toBe(inPlace);
          if (inPlace) {
            expect(out.byteOffset).toBe(offset - 5);
            // Used once: a second framing copies.
            expect(encodeEnvelope(flags, data).buffer).not.toBe(backing.buffer);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
