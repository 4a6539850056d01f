/**
 * The stack the end-to-end suites share: one OpenAI emulator behind a gateway whose
 * deployments all point at it (api_base from OPENAI_BASE_URL), plus clients for every
 * protocol. `useE2EStack()` registers the vitest hooks that start and stop it.
 */
import { afterAll, afterEach, beforeAll } from "vitest";
import { type Clients, createClients } from "./protocols.ts";
import { type Stack, startStack } from "./stack.ts";

/** A wrong upstream key: the emulator answers 401; it must never reach a client. */
export const BAD_UPSTREAM_KEY = "sk-wrong-upstream-key-4f1c9e27b6";

/** Small, so a body over the limit is cheap; still above a 5000-character prompt. */
export const MAX_BODY_BYTES = 16_384;

/**
 * Public names, one deployment each:
 * - image-hq: the happy path with a named deployment id
 * - limited: for 429s, which rest a deployment until its Retry-After has passed
 * - bad-key: a wrong upstream key
 * - slow: a 0.3 s upstream timeout
 */
export const E2E_YAML = `
model_list:
  - model_name: image-hq
    params:
      model: openai/dall-e-3
      api_key: os.environ/OPENAI_API_KEY
    model_info:
      id: openai-eu-1
  - model_name: limited
    params:
      model: openai/dall-e-3
    model_info:
      id: openai-limited
  - model_name: bad-key
    params:
      model: openai/dall-e-3
      api_key: ${BAD_UPSTREAM_KEY}
    model_info:
      id: openai-bad-key
  - model_name: slow
    params:
      model: openai/dall-e-3
      timeout: 0.3
    model_info:
      id: openai-slow
router_settings:
  # One attempt per request: each queued fault decides its request's outcome, and failures
  # do not cool a deployment down for the tests that follow.
  num_retries: 0
  allowed_fails: 1000
  cooldown_time: 0
server:
  max_body_bytes: ${MAX_BODY_BYTES}
`;

export interface E2E {
  stack: Stack;
  clients: Clients;
}

/** Starts a stack before the enclosing suite's tests and stops it after; clears faults after each test. */
export function useE2EStack(yaml = E2E_YAML): E2E {
  const ctx = {} as E2E;
  beforeAll(async () => {
    ctx.stack = await startStack({ yaml });
    ctx.clients = createClients(ctx.stack);
  });
  afterAll(async () => {
    ctx.clients?.close();
    await ctx.stack?.close();
  });
  afterEach(() => {
    ctx.stack.openai.faults.clear();
  });
  return ctx;
}
