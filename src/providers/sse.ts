/**
 * Streamed upstream answers (server-sent events) through the same pooled client as
 * `sendUpstream`: an error status is read whole and answered like any other (the adapter
 * maps it); a 200 is read event by event as it arrives, never buffered whole. An event's
 * data (one partial image's JSON, a few MB) is the most held at a time; it is handed over
 * as the chunks it arrived in, so images are read from them without one large string.
 *
 * The attempt's timeout covers the wait for the upstream's answer and each wait between
 * its events. Ending the iteration early (`return()`), or the caller's signal, closes the
 * upstream connection: the upstream sees its client gone.
 */
import { request } from "undici";
import { upstreamError } from "../errors/upstream.ts";
import {
  dispatchBody,
  first,
  type ReceivedResponse,
  safeUrl,
  upstreamFailure,
  sendUpstreamAgent,
  type UpstreamRequest,
  upstreamLimits,
} from "./http.ts";

/** One server-sent event: its type (`event:`) and its data lines, joined by `\n`, as chunks. */
export interface SseEvent {
  event: string | undefined;
  data: Buffer[];
}

export type StreamedResponse =
  /** Not a stream: an error status (or a JSON answer), read whole. */
  | { stream: false; response: ReceivedResponse }
  | {
      stream: true;
      status: number;
      headers: ReceivedResponse["headers"];
      events: AsyncGenerator<SseEvent>;
    };

const NEWLINE = 0x0a;
const CR = 0x0d;

/** Sends `req` and, on a 200 `text/event-stream`, yields its events as they arrive. */
export async function streamUpstream(url: string, req: UpstreamRequest): Promise<StreamedResponse> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(req.signal.reason);
  if (req.signal.aborted) onAbort();
  else req.signal.addEventListener("abort", onAbort, { once: true });
  // The upstream's silence is timed, not the stream: each chunk restarts the clock.
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const restartClock = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      expired = true;
      controller.abort(new DOMException("upstream timeout", "TimeoutError"));
    }, req.timeoutMs);
  };
  restartClock();
  const fail = (e: unknown): never => {
    throw upstreamFailure(e, url, req, expired);
  };
  const done = () => {
    clearTimeout(timer);
    req.signal.removeEventListener("abort", onAbort);
  };
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, {
      dispatcher: sendUpstreamAgent,
      method: req.method,
      ...dispatchBody(req),
      signal: controller.signal,
    });
  } catch (e) {
    done();
    return fail(e);
  }
  const contentType = first(res.headers["content-type"]) ?? "";
  if (res.statusCode !== 200 || !contentType.startsWith("text/event-stream")) {
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > (req.maxBytes ?? upstreamLimits.maxBytes)) {
          res.body.destroy();
          throw upstreamError(
            "response_too_large",
            `upstream ${safeUrl(url)} sent more than ${req.maxBytes ?? upstreamLimits.maxBytes} bytes`,
          );
        }
        chunks.push(chunk);
      }
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      return {
        stream: false,
        response: { status: res.statusCode, headers: res.headers, chunks, body },
      };
    } catch (e) {
      return fail(e);
    } finally {
      done();
    }
  }
  const body = res.body;
  const maxEventBytes = req.maxBytes ?? upstreamLimits.maxBytes;
  async function* events(): AsyncGenerator<SseEvent> {
    let finished = false;
    try {
      let line: Buffer[] = [];
      let lineBytes = 0;
      let event: string | undefined;
      let data: Buffer[] = [];
      let dataBytes = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        restartClock();
        let start = 0;
        for (;;) {
          const nl = chunk.indexOf(NEWLINE, start);
          if (nl < 0) {
            if (start < chunk.length) {
              line.push(chunk.subarray(start));
              lineBytes += chunk.length - start;
            }
            break;
          }
          line.push(chunk.subarray(start, nl));
          start = nl + 1;
          const parts = line;
          line = [];
          lineBytes = 0;
          // A line's pieces are kept as they came: a data line (an image, MBs) is never joined.
          dropTrailingCr(parts);
          if (parts.every((p) => p.length === 0)) {
            if (data.length > 0 || event !== undefined) yield { event, data };
            event = undefined;
            data = [];
            dataBytes = 0;
            continue;
          }
          // The field name is short: read it from the line's first bytes.
          const head = firstBytes(parts, 8);
          const colon = head.indexOf(":");
          const field = (colon < 0 ? head : head.subarray(0, colon)).toString("latin1");
          if (field !== "event" && field !== "data") continue; // id, retry, comments: unused
          // A field without a colon has an empty value.
          const value = colon < 0 ? [] : afterField(parts, colon + 1);
          if (field === "event") event = Buffer.concat(value).toString("utf8");
          else {
            if (data.length > 0) data.push(Buffer.from("\n"));
            for (const v of value) {
              data.push(v);
              dataBytes += v.length;
            }
          }
        }
        if (lineBytes + dataBytes > maxEventBytes) {
          throw upstreamError(
            "response_too_large",
            `upstream ${safeUrl(url)} sent an event of more than ${maxEventBytes} bytes`,
          );
        }
      }
      // An event not ended by a blank line is incomplete: dropped, as the SSE spec says.
      finished = true;
    } catch (e) {
      fail(e);
    } finally {
      if (!finished) body.destroy();
      done();
    }
  }
  return { stream: true, status: res.statusCode, headers: res.headers, events: events() };
}

/** A line's pieces after its first `skip` bytes and the one space that may follow them. */
function afterField(parts: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  let spaceChecked = false;
  for (const part of parts) {
    let piece = part;
    if (left > 0) {
      const cut = Math.min(left, piece.length);
      piece = piece.subarray(cut);
      left -= cut;
      if (left > 0) continue;
    }
    if (!spaceChecked && piece.length > 0) {
      spaceChecked = true;
      if (piece[0] === 0x20) piece = piece.subarray(1);
    }
    if (piece.length > 0) out.push(piece);
  }
  return out;
}

/** The line's `\r` before its `\n`, if any, removed (it may sit in an earlier piece). */
function dropTrailingCr(parts: Buffer[]): void {
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    if (part.length === 0) continue;
    if (part[part.length - 1] === CR) parts[i] = part.subarray(0, -1);
    return;
  }
}

/** Up to `n` bytes from the start of a line's pieces, joining only the few pieces they span. */
function firstBytes(parts: readonly Buffer[], n: number): Buffer {
  if (parts[0]!.length >= n) return parts[0]!.subarray(0, n);
  const few: Buffer[] = [];
  let size = 0;
  for (const part of parts) {
    few.push(part.subarray(0, n - size));
    size += few.at(-1)!.length;
    if (size >= n) break;
  }
  return Buffer.concat(few, size);
}
