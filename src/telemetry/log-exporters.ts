/**
 * Where request log records go without a collector: JSON lines on stdout (the default),
 * or one readable line each (`npm run dev`).
 */
import { type ExportResult, ExportResultCode, hrTimeToMilliseconds } from "@opentelemetry/core";
import type { LogRecordExporter, ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { escapeControl } from "../log/logger.ts";

/** Writes whole lines, each ending in a newline. */
type Write = (lines: string) => void;
const stdout: Write = (lines) => process.stdout.write(lines);

abstract class LineExporter implements LogRecordExporter {
  protected readonly write: Write;
  constructor(write: Write = stdout) {
    this.write = write;
  }
  /** A batch's lines in one write: stdout to a pipe or file is a synchronous system call per write. */
  export(logs: ReadableLogRecord[], done: (result: ExportResult) => void): void {
    let text = "";
    for (const record of logs) text += `${this.format(record)}\n`;
    if (text !== "") this.write(text);
    done({ code: ExportResultCode.SUCCESS });
  }
  protected abstract format(record: ReadableLogRecord): string;
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** One JSON object a line: time, level, message, trace ids and every attribute. */
export class JsonLinesLogExporter extends LineExporter {
  protected format(record: ReadableLogRecord): string {
    return JSON.stringify({
      time: new Date(hrTimeToMilliseconds(record.hrTime)).toISOString(),
      level: record.severityText?.toLowerCase(),
      msg: record.body,
      trace_id: record.spanContext?.traceId,
      span_id: record.spanContext?.spanId,
      ...record.attributes,
    });
  }
}

/**
 * `POST image-hq 200 1 image 1024x1024 $0.04 312 ms openai-eu-1 ×1 req_…`. Every field is
 * escaped (`escapeControl`): a model name or an error holding a newline cannot forge a line.
 */
export class PrettyLogExporter extends LineExporter {
  protected format(record: ReadableLogRecord): string {
    const a = record.attributes;
    if (a["imagegate.request_id"] === undefined) return escapeControl(String(record.body));
    const images = a["imagegate.images"];
    const cost = a["imagegate.cost_usd"];
    return [
      a["imagegate.protocol"],
      a["imagegate.model"] ?? "-",
      a["imagegate.status"],
      images !== undefined ? `${images} image${images === 1 ? "" : "s"}` : undefined,
      a["imagegate.size"],
      cost !== undefined ? `$${cost}` : undefined,
      `${a["imagegate.duration_ms"]} ms`,
      a["imagegate.deployment"],
      a["imagegate.attempts"] ? `×${a["imagegate.attempts"]}` : undefined,
      a["imagegate.error"] !== undefined ? JSON.stringify(String(a["imagegate.error"])) : undefined,
      a["imagegate.request_id"],
    ]
      .filter((p) => p !== undefined)
      .map((p) => escapeControl(String(p)))
      .join(" ");
  }
}
