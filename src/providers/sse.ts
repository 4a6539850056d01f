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
import { GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import {
  first,
  type ReceivedResponse,
  safeUrl,
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
    if (req.signal.aborted) throw req.signal.reason ?? e;
    if (expired) {
      throw upstreamError(
        "timeout",
        `upstream ${safeUrl(url)} did not answer within ${req.timeoutMs / 1000} s`,
        { cause: e },
      );
    }
    if (e instanceof GatewayError) throw e;
    const code = (e as { code?: string }).code;
    throw upstreamError(
      "unreachable",
      `upstream ${safeUrl(url)} unreachable: ${code ?? (e as Error).message}`,
      { cause: e },
    );
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
      headers: req.headers,
      body: req.body,
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
          let whole = line.length === 1 ? line[0]! : Buffer.concat(line);
          line = [];
          lineBytes = 0;
          if (whole.length > 0 && whole[whole.length - 1] === CR) whole = whole.subarray(0, -1);
          if (whole.length === 0) {
            if (data.length > 0 || event !== undefined) yield { event, data };
            event = undefined;
            data = [];
            dataBytes = 0;
            continue;
          }
          const colon = whole.indexOf(":");
          const field = (colon < 0 ? whole : whole.subarray(0, colon)).toString("latin1");
          let value = colon < 0 ? whole.subarray(whole.length) : whole.subarray(colon + 1);
          if (value[0] === 0x20) value = value.subarray(1);
          if (field === "event") event = value.toString("utf8");
          else if (field === "data") {
            if (data.length > 0) data.push(Buffer.from("\n"));
            data.push(value);
            dataBytes += value.length;
          }
        }
        if (lineBytes + dataBytes > maxEventBytes) {
          throw upstreamError(
            "response_too_large",
            `upstream ${safeUrl(url)} sent an event of more than ${maxEventBytes} bytes`,
          );
        }
      }
      if (data.length > 0) yield { event, data };
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
