/**
 * `Uint8Array.prototype.toBase64` (TC39, shipped in V8 behind `--js-base-64` on Node 24),
 * backed by Buffer's native encoder. protobuf-es uses the native method when it exists and
 * otherwise builds base64 strings a character at a time, which dominates the cost of a
 * multi-megabyte image in JSON. Import this module before anything loads protobuf-es.
 */
interface ToBase64Options {
  alphabet?: "base64" | "base64url";
  omitPadding?: boolean;
}

declare global {
  interface Uint8Array {
    toBase64?(options?: ToBase64Options): string;
  }
}

if (typeof Uint8Array.prototype.toBase64 !== "function") {
  Object.defineProperty(Uint8Array.prototype, "toBase64", {
    configurable: true,
    writable: true,
    value: function toBase64(this: Uint8Array, options: ToBase64Options = {}): string {
      const url = options.alphabet === "base64url";
      const text = Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString(
        url ? "base64url" : "base64",
      );
      if (url) return options.omitPadding ? text : text.padEnd(Math.ceil(text.length / 4) * 4, "=");
      return options.omitPadding ? text.replace(/=+$/, "") : text;
    },
  });
}

export {};
