/**
 * CreateImageStream over gRPC (grpc-js: the events, then the cost in the trailer) and
 * Connect (connect-es's client, HTTP/1.1 JSON and HTTP/2 binary).
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { imageSize } from "image-size";
import { describe, expect, it } from "vitest";
import {
  type CreateImageRequest,
  type ImageStreamEvent,
  ImageService,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { useE2EStack } from "../support/e2e.ts";
import { grpcClient } from "../support/grpc.ts";

const e2e = useE2EStack();

const REQUEST: Partial<CreateImageRequest> = {
  model: "gpt-image-1",
  prompt: "a lighthouse",
  size: "1024x1024",
  quality: "low",
  partialImages: 1,
};

function kinds(events: ImageStreamEvent[]): Array<string | undefined> {
  return events.map((e) => e.event.case);
}

describe("CreateImageStream over gRPC (grpc-js)", () => {
  it("sends the partial image and the completed image as bytes, then the cost in the trailer", async () => {
    const { client } = grpcClient(ImageService, `127.0.0.1:${e2e.stack.gateway.port}`);
    try {
      const call = (
        client as unknown as Record<
          string,
          (req: unknown, md: grpc.Metadata) => grpc.ClientReadableStream<ImageStreamEvent>
        >
      ).createImageStream!(REQUEST, new grpc.Metadata());
      const headers = new Promise<grpc.Metadata>((resolve) => call.once("metadata", resolve));
      const trailer = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
      const events: ImageStreamEvent[] = [];
      for await (const event of call) events.push(event as ImageStreamEvent);
      expect(kinds(events)).toEqual(["partialImage", "completed"]);
      const completed = events[1]!.event;
      if (completed.case !== "completed") throw new Error("not completed");
      expect(imageSize(completed.value.b64Json)).toMatchObject({ width: 1024, height: 1024 });
      expect(completed.value.usage?.outputTokens).toBe(272 + 100);
      const cost = completed.value.imagegateCostUsd;
      expect(cost).toBeGreaterThan(0);
      expect((await headers).get("x-imagegate-model")).toEqual(["openai/gpt-image-1"]);
      const status = await trailer;
      expect(status.code).toBe(grpc.status.OK);
      expect(Number(status.metadata.get("x-imagegate-cost-usd")[0])).toBeCloseTo(cost!, 10);
    } finally {
      client.close();
    }
  });
});

describe.each([
  ["HTTP/1.1 JSON", "1.1", false],
  ["HTTP/2 binary", "2", true],
] as const)("CreateImageStream over Connect (%s)", (_name, httpVersion, useBinaryFormat) => {
  it("iterates the events; a model whose provider does not stream sends one completed event", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: e2e.stack.url, httpVersion, useBinaryFormat }),
    );
    const streamed: ImageStreamEvent[] = [];
    for await (const e of client.createImageStream(REQUEST)) streamed.push(e);
    expect(kinds(streamed)).toEqual(["partialImage", "completed"]);
    const whole: ImageStreamEvent[] = [];
    let trailer: Headers | undefined;
    for await (const e of client.createImageStream(
      { model: "dall-e-2", prompt: "a boat", size: "256x256" },
      { onTrailer: (t) => (trailer = t) },
    ))
      whole.push(e);
    expect(kinds(whole)).toEqual(["completed"]);
    const done = whole[0]!.event;
    if (done.case !== "completed") throw new Error("not completed");
    expect(imageSize(done.value.b64Json)).toMatchObject({ width: 256, height: 256 });
    expect(done.value.imagegateCostUsd).toBeCloseTo(0.016, 10);
    expect(Number(trailer?.get("x-imagegate-cost-usd"))).toBeCloseTo(0.016, 10);
  });
});
