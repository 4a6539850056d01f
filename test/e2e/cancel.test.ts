/**
 * Cancellation: a client that gives up while the provider is still working makes the
 * gateway abort its upstream request, whichever protocol the client used. The emulator
 * hangs (it never answers) and counts the requests whose client went away.
 */
import OpenAI from "openai";
import { describe, expect, it, vi } from "vitest";
import { openaiFaults } from "@imagegate/emulators/openai";
import { useE2EStack } from "../support/e2e.ts";
import { ALL_PROTOCOLS, Code, type Outcome } from "../support/protocols.ts";

const e2e = useE2EStack();

const WAIT = { timeout: 5000, interval: 5 };

describe.each(ALL_PROTOCOLS)("cancellation over %s", (protocol) => {
  it("aborting the call aborts the upstream request", async () => {
    e2e.stack.openai.faults.push(openaiFaults.hang());
    const requestsBefore = e2e.stack.openai.requests.length;
    const abandonedBefore = e2e.stack.openai.abandonedRequests;
    const controller = new AbortController();
    // openai/dall-e-3 has the default 120 s timeout: only the client can end this call.
    const pending: Promise<Outcome | Error> = e2e.clients
      .call(
        protocol,
        { model: "openai/dall-e-3", prompt: "wait for me" },
        { signal: controller.signal },
      )
      .catch((e: unknown) => e as Error);
    await vi.waitFor(() => expect(e2e.stack.openai.requests.length).toBe(requestsBefore + 1), WAIT);
    controller.abort();
    const result = await pending;
    if (result instanceof Error) {
      // The SDK's own abort error, or node:http2's AbortError.
      expect(
        result instanceof OpenAI.APIUserAbortError || result.name === "AbortError",
        String(result),
      ).toBe(true);
    } else {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.grpcCode).toBe(Code.Canceled);
    }
    await vi.waitFor(
      () => expect(e2e.stack.openai.abandonedRequests).toBe(abandonedBefore + 1),
      WAIT,
    );
  });
});

describe("after cancellations", () => {
  it("the gateway still serves every protocol", async () => {
    for (const protocol of ALL_PROTOCOLS) {
      const outcome = await e2e.clients.call(protocol, {
        model: "dall-e-2",
        prompt: "still here",
        size: "256x256",
      });
      expect(outcome.ok, protocol).toBe(true);
    }
  });

  it("an upstream timeout also releases the upstream request", async () => {
    e2e.stack.openai.faults.push(openaiFaults.hang());
    const abandonedBefore = e2e.stack.openai.abandonedRequests;
    const outcome = await e2e.clients.call("rest", { model: "slow", prompt: "too slow" });
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.httpStatus).toBe(504);
    await vi.waitFor(
      () => expect(e2e.stack.openai.abandonedRequests).toBe(abandonedBefore + 1),
      WAIT,
    );
  });

  it("a latency fault shorter than the timeout is only a delay", async () => {
    // The default deployment's timeout (120 s) leaves room even on a loaded machine.
    e2e.stack.openai.faults.push(openaiFaults.latency(200));
    const outcome = await e2e.clients.call("rest", {
      model: "dall-e-2",
      prompt: "a bit slow",
      response_format: "b64_json",
    });
    expect(outcome.ok).toBe(true);
  });
});
