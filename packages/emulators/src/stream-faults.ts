/**
 * Streamed answers (server-sent events) as OpenAI and Azure OpenAI send them, paced like a
 * real upstream (the events leave one by one, not in one write), with faults injectable
 * mid-stream: after some events, an `error` event and the end, a hang until the client
 * goes away, or a connection reset. An emulator counts the streams whose client went away
 * before the last event (`abandonedStreams`): how a test sees that the gateway cancelled
 * its upstream call.
 */
import type http from "node:http";

export interface StreamFault {
  /** Events sent before the fault (default 0). */
  afterEvents?: number;
  /** `error`: one error event, then the end; `hang`: no more events until the client leaves; `reset`: a TCP reset. */
  action: "error" | "hang" | "reset";
  /** Wait between events (default: the emulator's pacing). */
  eventDelayMs?: number;
}

export interface StreamEvent {
  event: string;
  data: () => object;
}

export interface StreamOptions {
  fault?: StreamFault;
  /** Wait before each event (default 0: each event still leaves in a turn of its own). */
  eventDelayMs?: number;
  /** Called once if the client went away before the stream's end. */
  onAbandoned(): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes `events` as server-sent events, one turn (and `eventDelayMs`) apart, honouring `fault`. */
export async function sendEventStream(
  res: http.ServerResponse,
  events: Iterable<StreamEvent>,
  opts: StreamOptions,
): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
  let gone = false;
  res.once("close", () => {
    if (!res.writableFinished) {
      gone = true;
      opts.onAbandoned();
    }
  });
  const delay = opts.fault?.eventDelayMs ?? opts.eventDelayMs ?? 0;
  let sent = 0;
  for (const event of events) {
    if (opts.fault !== undefined && sent === (opts.fault.afterEvents ?? 0)) break;
    await sleep(delay);
    if (gone) return;
    res.write(`event: ${event.event}\ndata: ${JSON.stringify(event.data())}\n\n`);
    sent += 1;
  }
  const fault = opts.fault;
  if (fault === undefined) return void res.end();
  await sleep(delay);
  if (gone) return;
  if (fault.action === "error") {
    res.write(
      `event: error\ndata: ${JSON.stringify({
        type: "error",
        error: {
          message: "The server had an error while processing your request. Sorry about that!",
          type: "server_error",
          param: null,
          code: null,
        },
      })}\n\n`,
    );
    res.end();
  } else if (fault.action === "reset") {
    res.socket?.resetAndDestroy();
  }
  // hang: nothing more; the exchange ends when the client goes away.
}
