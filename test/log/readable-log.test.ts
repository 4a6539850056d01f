/**
 * The readable log formats (`npm run dev`'s request lines and the pretty logger): a value a
 * client or an upstream chose (a model name, an error message) must not start a second,
 * forged line or hide text with terminal controls.
 */
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { describe, expect, it } from "vitest";
import { createLogger, escapeControl } from "../../src/log/logger.ts";
import { PrettyLogExporter } from "../../src/telemetry/log-exporters.ts";

const FORGED = "dall-e-3\nrest image-hq 200 1 image 1024x1024 $0 1 ms admin ×1 req_forged";

function exportOne(attributes: Record<string, string | number>, body = "request"): string {
  let out = "";
  const exporter = new PrettyLogExporter((lines) => {
    out += lines;
  });
  exporter.export([{ attributes, body, hrTime: [0, 0] } as unknown as ReadableLogRecord], () => {});
  return out;
}

describe("readable request log", () => {
  it("keeps one record on one line whatever its fields hold", () => {
    const out = exportOne({
      "imagegate.request_id": "req_1",
      "imagegate.protocol": "rest",
      "imagegate.model": FORGED,
      "imagegate.status": 404,
      "imagegate.duration_ms": 3,
      "imagegate.deployment": "d\r\u2028x",
      "imagegate.error": `The model '${FORGED}' does not exist" \u001b[2Khidden\u0085`,
    });
    expect(out.split("\n")).toHaveLength(2); // the line and the final newline
    expect(out.slice(0, -1)).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
    expect(out).toContain("dall-e-3\\nrest image-hq");
    expect(out).toContain("d\\r\\u2028x");
    // The error stays one quoted field: its own quote is escaped.
    expect(out).toContain('exist\\" \\u001b[2Khidden\\x85"');
  });

  it("escapes records that are not requests too", () => {
    expect(exportOne({}, "started\nPOST forged")).toBe("started\\nPOST forged\n");
  });
});

describe("pretty logger", () => {
  it("escapes the message, field names and values", () => {
    const lines: string[] = [];
    const logger = createLogger({ pretty: true, out: (l) => lines.push(l) });
    logger.log("warn", "model\nINFO forged", { "x\ny": "a\nb", error: "two words", n: 1 });
    expect(lines).toEqual(['WARN model\\nINFO forged x\\ny="a\\nb" error="two words" n=1']);
  });
});

describe("escapeControl", () => {
  it("escapes every control character and nothing else", () => {
    const wrong: number[] = [];
    for (let c = 0; c < 0x3000; c += 1) {
      const ch = String.fromCharCode(c);
      const control = c < 0x20 || (c >= 0x7f && c < 0xa0) || c === 0x2028 || c === 0x2029;
      const bidi =
        c === 0x200e ||
        c === 0x200f ||
        (c >= 0x202a && c <= 0x202e) ||
        (c >= 0x2066 && c <= 0x2069);
      const escaped = escapeControl(ch);
      if (
        (control || bidi) !== (escaped !== ch) ||
        (escaped !== ch && !/^\\[xu][0-9a-f]+$|^\\[nrt]$/.test(escaped))
      )
        wrong.push(c);
    }
    expect(wrong).toEqual([]);
  });
});
