/**
 * Runs a request on a model group: picks a deployment by the configured strategy among
 * those that are healthy, under their rpm and parallel limits, in the best priority tier
 * and able to serve the request; retries failures (elsewhere at once when possible, else
 * after the upstream's hint or a backoff); cools down failing deployments; then tries the
 * fallback groups in order. Safety refusals go only to `content_policy_fallbacks`.
 */
import type { Allocate } from "../runtime/buffer-pool.ts";
import { type Deadline, deadline } from "../runtime/deadline.ts";
import type { Deployment } from "../config/deployment.ts";
import type { RouterSettings } from "../config/schema.ts";
import { type AttemptRecord, GatewayError } from "../errors/errors.ts";
import { upstreamError } from "../errors/upstream.ts";
import { lifecycleState, retiredMessage } from "../catalog/lifecycle.ts";
import type { CreateImageRequest } from "../gen/imagegate/v1/images_pb.js";
import type { Provider } from "../catalog/providers.ts";
import type {
  GenerationResult,
  ProviderAdapter,
  UpstreamCall,
  UpstreamEvent,
} from "../providers/types.ts";
import type { EditInput } from "../catalog/edit-rules.ts";
import {
  backoffMs,
  breaksDeployment,
  classify,
  cooldownMs,
  coolsDown,
  DEFAULTS,
  isRetryable,
  retriesFor,
} from "./policy.ts";
import type { ModelGroup, ModelResolver } from "./resolve.ts";
import { InMemoryRouterState, type RouterState } from "./state.ts";
import { type AttemptStats, DeploymentStatsWindow } from "./stats.ts";
import { type Strategy, strategyFor } from "./strategies.ts";

export interface RouteOutcome<T = GenerationResult> {
  result: T;
  deployment: Deployment;
  /** The group that answered (after fallbacks). */
  group: string;
}

/**
 * A stream the router settled on: its first event (already arrived), the rest (none for a
 * provider that does not stream), and `close`, which ends the request deadline.
 */
export interface RoutedStream {
  first: UpstreamEvent;
  rest: AsyncIterator<UpstreamEvent> | undefined;
  close(): void;
}

/** Hooks for whoever reports on the call (headers, telemetry). */
export interface RouteListener {
  onAttempt(deployment: Deployment): void;
  /** An attempt on `deployment` failed with `error` (whatever follows: retry, fallback or the end). */
  onAttemptFailed?(deployment: Deployment, error: GatewayError): void;
  onRetry?(deployment: Deployment, error: GatewayError, waitMs: number): void;
  onFallback?(from: string, to: string, reason: string): void;
}

export interface RouterOptions {
  settings: RouterSettings;
  adapters: readonly ProviderAdapter[];
  resolver: ModelResolver;
  /**
   * Throws the 400 that `deployment` would give `request` (the catalog's validation), and
   * for an edit or variation the 400 its input images get.
   */
  validate(
    deployment: Deployment,
    request: CreateImageRequest,
    modelName: string,
    edit?: EditInput,
  ): void;
  state?: RouterState;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A deployment as people see it now (`/model/stats`); read-only. */
export interface DeploymentStatus extends AttemptStats {
  /** Epoch ms; only while it cools down. */
  cooldownUntil: number | undefined;
  inflight: number;
}

/** A group with no deployment to try right now; `retryAt` is when one frees up. */
class GroupUnavailable extends Error {
  readonly retryAt: number;
  readonly why: "cooling" | "limits";
  constructor(group: string, why: "cooling" | "limits", retryAt: number) {
    super(
      why === "cooling"
        ? `No deployments available for model '${group}': all are cooling down after failures`
        : `No deployments available for model '${group}': all are at their rpm or parallel-request limits`,
    );
    this.why = why;
    this.retryAt = retryAt;
  }
}

/** What one attempt does with the deployment's adapter (`generate`, or open a stream). */
type Attempt<T> = (adapter: ProviderAdapter, call: UpstreamCall) => Promise<T>;

interface Call<T = unknown> {
  request: CreateImageRequest;
  attempt: Attempt<T>;
  /** An edit or variation: only deployments that can do it are tried. */
  edit: EditInput | undefined;
  /** The caller's signal (client gone, call over). */
  signal: AbortSignal;
  deadline: number;
  /** Aborts when `signal` does or the deadline passes: what attempts and waits listen to. */
  within: Deadline;
  listener: RouteListener;
  allocate: Allocate | undefined;
  attempts: AttemptRecord[];
  errors: GatewayError[];
}

export class Router {
  private readonly adapters: ReadonlyMap<Provider, ProviderAdapter>;
  private readonly settings: RouterSettings;
  private readonly resolver: ModelResolver;
  private readonly validateFn: RouterOptions["validate"];
  private readonly state: RouterState;
  private readonly strategy: Strategy;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly stats = new DeploymentStatsWindow();

  constructor(options: RouterOptions) {
    this.adapters = new Map(options.adapters.map((a) => [a.provider, a]));
    this.settings = options.settings;
    this.resolver = options.resolver;
    this.validateFn = options.validate;
    this.state = options.state ?? new InMemoryRouterState();
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? abortableSleep;
    this.strategy = strategyFor(this.settings.routing_strategy, {
      latencyBuffer: this.settings.lowest_latency_buffer ?? DEFAULTS.latencyBuffer,
      random: this.random,
    });
  }

  /**
   * `allocate`: memory for large decoded images, handed to the adapters (see
   * runtime/buffer-pool.ts). `edit`: the request is an edit or variation.
   */
  async route(
    group: ModelGroup,
    request: CreateImageRequest,
    signal: AbortSignal,
    listener: RouteListener,
    allocate?: Allocate,
    edit?: EditInput,
  ): Promise<RouteOutcome> {
    const { outcome, within } = await this.run(
      group,
      request,
      signal,
      listener,
      allocate,
      (adapter, upstream) => adapter.generate(upstream),
      edit,
    );
    within.dispose();
    return outcome;
  }

  /**
   * As `route`, for a stream: the outcome is the upstream's events once the first one has
   * arrived (where the provider streams: its SSE; elsewhere: one `completed` event from the
   * ordinary call). Retries and fallbacks happen only until then: after the first event a
   * failure is the stream's. The request deadline covers the whole stream; `close` ends
   * it (call it once the stream is over).
   */
  async routeStream(
    group: ModelGroup,
    request: CreateImageRequest,
    signal: AbortSignal,
    listener: RouteListener,
    allocate?: Allocate,
    /** Memory for a streaming upstream's images, given back event by event (else: plain). */
    eventAllocate?: Allocate,
    edit?: EditInput,
  ): Promise<RouteOutcome<RoutedStream>> {
    const { outcome, within } = await this.run(
      group,
      request,
      signal,
      listener,
      allocate,
      async (adapter, upstream): Promise<RoutedStream> => {
        const streams =
          adapter.stream !== undefined &&
          (upstream.deployment.spec.params as readonly string[]).includes("stream");
        if (!streams) {
          const result = await adapter.generate(upstream);
          return { first: { type: "completed", result }, rest: undefined, close() {} };
        }
        const it = await adapter.stream!({ ...upstream, allocate: eventAllocate });
        try {
          const first = await it.next();
          if (first.done) throw new Error("internal: the upstream stream ended before any event");
          return { first: first.value, rest: it, close() {} };
        } catch (e) {
          await it.return?.();
          throw e;
        }
      },
      edit,
    );
    outcome.result.close = () => within.dispose();
    return outcome;
  }

  private async run<T>(
    group: ModelGroup,
    request: CreateImageRequest,
    signal: AbortSignal,
    listener: RouteListener,
    allocate: Allocate | undefined,
    attempt: Attempt<T>,
    edit: EditInput | undefined,
  ): Promise<{ outcome: RouteOutcome<T>; within: Deadline }> {
    // Nothing reaches a provider that the gateway could have rejected itself.
    const { deployments: servable, refusal } = this.servable(group, request, edit);
    if (servable.length === 0) throw refusal;
    const timeoutMs = (this.settings.timeout ?? DEFAULTS.timeoutSeconds) * 1000;
    if (signal.aborted) throw signal.reason;
    const call: Call<T> = {
      request,
      attempt,
      edit,
      signal,
      deadline: this.now() + timeoutMs,
      within: deadline(signal, timeoutMs, "request deadline"),
      listener,
      allocate,
      attempts: [],
      errors: [],
    };
    try {
      return { outcome: await this.routeCall(group, servable, call), within: call.within };
    } catch (e) {
      call.within.dispose();
      throw e;
    }
  }

  private async routeCall<T>(
    group: ModelGroup,
    servable: Deployment[],
    call: Call<T>,
  ): Promise<RouteOutcome<T>> {
    const { signal, listener } = call;
    let unavailable: GroupUnavailable | undefined;
    try {
      return await this.runGroup(group.name, servable, call);
    } catch (e) {
      if (e instanceof GatewayError && e.kind === "content_policy")
        return this.contentPolicyFallbacks(group.name, e, call);
      if (e instanceof GroupUnavailable) unavailable = e;
      else if (!(e instanceof GatewayError) || !isRetryable(e)) throw e;
    }
    for (const name of this.fallbacksFor(group.name)) {
      if (signal.aborted) throw signal.reason;
      const target = this.fallbackGroup(name, group.name, call);
      if (target === undefined) continue;
      listener.onFallback?.(group.name, name, "primary group failed");
      try {
        return await this.runGroup(target.name, target.deployments, call);
      } catch (e) {
        if (e instanceof GroupUnavailable) unavailable = earliest(unavailable, e);
        else if (!(e instanceof GatewayError) || !isRetryable(e)) throw e;
      }
    }
    throw this.finalError(group.name, call, unavailable);
  }

  /**
   * Every deployment `request` may reach: those of `group` and of its fallbacks (the
   * content-policy ones too) that accept it. What a budget must hold for is the priciest.
   */
  reachable(group: ModelGroup, request: CreateImageRequest, edit?: EditInput): Deployment[] {
    const reached = this.servable(group, request, edit).deployments;
    // None: routing answers with the group's 400 before anything is spent.
    if (reached.length === 0) return reached;
    const policy = this.settings.content_policy_fallbacks?.find((f) =>
      Object.hasOwn(f, group.name),
    );
    const names = new Set([...this.fallbacksFor(group.name), ...(policy?.[group.name] ?? [])]);
    for (const name of names) {
      let target: ModelGroup;
      try {
        target = this.resolver.resolve(name);
      } catch {
        continue; // routing skips it too
      }
      reached.push(...this.servable(target, request, edit).deployments);
    }
    return reached;
  }

  /** Whether a deployment is out of rotation right now. */
  isCooling(deploymentId: string): boolean {
    return this.state.cooldownUntil(deploymentId, this.now()) !== undefined;
  }

  /** A deployment's state and recent figures (this replica's attempts), for people to read. */
  status(deploymentId: string): DeploymentStatus {
    const now = this.now();
    return {
      cooldownUntil: this.state.cooldownUntil(deploymentId, now),
      inflight: this.state.inflight(deploymentId),
      ...this.stats.read(deploymentId, now),
    };
  }

  /** How far back `status` looks for latency and error rate, in ms. */
  get statusWindowMs(): number {
    return this.stats.windowMs;
  }

  /** Deployments of `group` able to serve `request`; when none is, the first one's 400. */
  private servable(
    group: ModelGroup,
    request: CreateImageRequest,
    edit?: EditInput,
  ): { deployments: Deployment[]; refusal: unknown } {
    let refusal: unknown;
    const deployments = group.deployments.filter((d) => {
      try {
        this.validateFn(d, request, group.name, edit);
        return true;
      } catch (e) {
        refusal ??= e;
        return false;
      }
    });
    // Built only when needed: an Error's stack trace is a measurable cost on every request.
    if (deployments.length === 0) {
      refusal ??= new GatewayError(
        "model_not_found",
        `The model '${group.name}' has no deployments.`,
        { param: "model" },
      );
    }
    return { deployments, refusal };
  }

  private fallbacksFor(group: string): string[] {
    const entry = this.settings.fallbacks?.find((f) => Object.hasOwn(f, group));
    const list = entry?.[group] ?? this.settings.default_fallbacks ?? [];
    return list
      .filter((n) => n !== group)
      .slice(0, this.settings.max_fallbacks ?? DEFAULTS.maxFallbacks);
  }

  /** A fallback group that can serve the request, or undefined with the reason recorded. */
  private fallbackGroup(
    name: string,
    from: string,
    call: Call,
  ): { name: string; deployments: Deployment[] } | undefined {
    let target: ModelGroup;
    try {
      target = this.resolver.resolve(name);
    } catch (e) {
      call.attempts.push({
        deployment: name,
        status: "skipped",
        message: `fallback '${name}' is not a usable model: ${(e as Error).message}`,
      });
      return undefined;
    }
    const { deployments, refusal } = this.servable(target, call.request, call.edit);
    if (deployments.length === 0) {
      const reason = refusal instanceof Error ? refusal.message : "cannot serve this request";
      call.attempts.push({
        deployment: name,
        status: "skipped",
        message: `fallback from '${from}' skipped: ${reason}`,
      });
      call.listener.onFallback?.(from, name, `skipped: ${reason}`);
      return undefined;
    }
    return { name: target.name, deployments };
  }

  private async contentPolicyFallbacks<T>(
    group: string,
    refusal: GatewayError,
    call: Call<T>,
  ): Promise<RouteOutcome<T>> {
    const entry = this.settings.content_policy_fallbacks?.find((f) => Object.hasOwn(f, group));
    for (const name of entry?.[group] ?? []) {
      if (call.signal.aborted) throw call.signal.reason;
      const target = this.fallbackGroup(name, group, call);
      if (target === undefined) continue;
      call.listener.onFallback?.(group, name, "content policy refusal");
      try {
        return await this.runGroup(target.name, target.deployments, call);
      } catch (e) {
        if (!(e instanceof GroupUnavailable) && !(e instanceof GatewayError)) throw e;
      }
    }
    // With no (working) content policy fallback, the refusal is the answer.
    throw refusal;
  }

  /** Tries one group's deployments, retrying per policy; throws the group's last error. */
  private async runGroup<T>(
    name: string,
    deployments: readonly Deployment[],
    call: Call<T>,
  ): Promise<RouteOutcome<T>> {
    const tried = new Set<string>();
    // Deployments a shared state found at their limits during this call (another replica
    // took the last slot since this one's view of it was refreshed).
    const full = new Set<string>();
    let retries = 0;
    let lastError: GatewayError | undefined;
    for (;;) {
      if (call.signal.aborted) throw call.signal.reason;
      // A retry prefers a deployment not tried yet, even one of a lower priority tier.
      const fresh = this.candidates(name, deployments, tried, full);
      const candidates =
        fresh instanceof GroupUnavailable
          ? this.candidates(name, deployments, undefined, full)
          : fresh;
      if (candidates instanceof GroupUnavailable) throw lastError ?? candidates;
      const deployment = this.strategy(candidates, this.state, this.now());
      const adapter = this.adapterFor(deployment);
      const started = this.now();
      const admitted = this.state.begin(deployment.id, started, deployment);
      if (admitted !== true && !(await admitted)) {
        full.add(deployment.id);
        continue;
      }
      try {
        const result = await this.attempt(deployment, adapter, call, started);
        return { result, deployment, group: name };
      } catch (e) {
        if (!(e instanceof GatewayError)) throw e;
        lastError = e;
        call.listener.onAttemptFailed?.(deployment, e);
        if (e.kind === "content_policy" || !isRetryable(e)) throw e;
        tried.add(deployment.id);
        if (retries >= retriesFor(classify(e), this.settings)) throw e;
        retries += 1;
        const canGoElsewhere = !(
          this.candidates(name, deployments, tried) instanceof GroupUnavailable
        );
        if (canGoElsewhere) {
          call.listener.onRetry?.(deployment, e, 0);
          continue;
        }
        if (breaksDeployment(e)) throw e;
        const wait = this.retryWait(e, retries, call);
        if (wait === undefined) throw e;
        call.listener.onRetry?.(deployment, e, wait);
        await this.sleep(wait, call.within.signal);
        if (call.signal.aborted) throw call.signal.reason;
      }
    }
  }

  /** How long to wait before retrying the same group, or undefined when waiting is pointless. */
  private retryWait(e: GatewayError, retries: number, call: Call): number | undefined {
    const maxWait = (this.settings.max_retry_wait ?? DEFAULTS.maxRetryWaitSeconds) * 1000;
    const wait =
      e.retryAfterSeconds !== undefined
        ? e.retryAfterSeconds * 1000
        : backoffMs(retries - 1, this.random);
    if (wait > maxWait || this.now() + wait >= call.deadline) return undefined;
    return wait;
  }

  /** The deployments to pick from now (best priority tier first), or why there are none. */
  private candidates(
    group: string,
    deployments: readonly Deployment[],
    exclude?: ReadonlySet<string>,
    full?: ReadonlySet<string>,
  ): Deployment[] | GroupUnavailable {
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    let cooling = 0;
    const open: Deployment[] = [];
    for (const d of deployments) {
      if (exclude?.has(d.id)) continue;
      const until = this.state.cooldownUntil(d.id, now);
      if (until !== undefined) {
        cooling += 1;
        soonest = Math.min(soonest, until);
        continue;
      }
      if (full?.has(d.id)) {
        soonest = Math.min(
          soonest,
          d.rpm !== undefined && this.state.recentRequests(d.id, now) >= d.rpm
            ? this.state.windowFreesAt(d.id, now)
            : now + 1000,
        );
        continue;
      }
      if (d.rpm !== undefined && this.state.recentRequests(d.id, now) >= d.rpm) {
        soonest = Math.min(soonest, this.state.windowFreesAt(d.id, now));
        continue;
      }
      if (d.maxParallel !== undefined && this.state.inflight(d.id) >= d.maxParallel) {
        soonest = Math.min(soonest, now + 1000);
        continue;
      }
      open.push(d);
    }
    if (open.length === 0)
      return new GroupUnavailable(
        group,
        cooling === deployments.length ? "cooling" : "limits",
        soonest,
      );
    let tier = open[0]!.order;
    for (const d of open) tier = Math.min(tier, d.order);
    // Usually one tier: then every open deployment is a candidate, without another array.
    return open.every((d) => d.order === tier) ? open : open.filter((d) => d.order === tier);
  }

  private adapterFor(deployment: Deployment): ProviderAdapter {
    const adapter = this.adapters.get(deployment.provider);
    if (adapter === undefined) {
      throw new GatewayError(
        "invalid_request",
        `Provider '${deployment.provider}' is not available in this build.`,
        {
          param: "model",
          code: "provider_not_supported",
        },
      );
    }
    return adapter;
  }

  /** One upstream call on a deployment the state has admitted (`begin`) at `started`. */
  private async attempt<T>(
    deployment: Deployment,
    adapter: ProviderAdapter,
    call: Call<T>,
    started: number,
  ): Promise<T> {
    try {
      call.listener.onAttempt(deployment);
      const result = await call.attempt(adapter, {
        deployment,
        request: call.request,
        signal: call.within.signal,
        allocate: call.allocate,
        edit: call.edit,
      });
      const now = this.now();
      this.state.recordLatency(deployment.id, now - started);
      this.stats.success(deployment.id, now, now - started);
      return result;
    } catch (raw) {
      if (call.signal.aborted) throw call.signal.reason ?? raw;
      this.stats.failure(deployment.id, this.now());
      const e = call.within.expired
        ? new GatewayError(
            "timeout",
            `the request deadline of ${this.settings.timeout ?? DEFAULTS.timeoutSeconds} s passed`,
            { cause: raw },
          )
        : raw instanceof GatewayError
          ? asRetired(deployment, raw)
          : raw;
      if (e instanceof GatewayError) {
        call.attempts.push({
          deployment: deployment.id,
          status: attemptStatus(e),
          message: e.message,
        });
        call.errors.push(e);
        const recorded = this.recordFailure(deployment, e);
        if (recorded !== undefined) await recorded;
      }
      throw e;
    } finally {
      this.state.end(deployment.id);
    }
  }

  /** Counts the failure against the deployment; a promise when a shared state counts it. */
  private recordFailure(deployment: Deployment, e: GatewayError): Promise<void> | undefined {
    if (!isRetryable(e)) return; // the request's fault or a refusal says nothing about the deployment
    const now = this.now();
    if (breaksDeployment(e)) {
      // A retired model stays retired: cooling its deployment would only turn the next
      // request's 404 (naming the successor) into a 429.
      if (!coolsDown(e)) return;
      this.state.coolDown(deployment.id, now + cooldownMs(e, this.settings));
      return;
    }
    if (e.kind === "rate_limit" && e.retryAfterSeconds !== undefined) {
      // The upstream said when it will take requests again: rest the deployment until then.
      this.state.coolDown(deployment.id, now + e.retryAfterSeconds * 1000);
      return;
    }
    const coolIfTooMany = (fails: number) => {
      if (fails >= (this.settings.allowed_fails ?? DEFAULTS.allowedFails)) {
        this.state.coolDown(deployment.id, now + cooldownMs(e, this.settings));
      }
    };
    const fails = this.state.recordFailure(deployment.id, now);
    if (typeof fails === "number") coolIfTooMany(fails);
    else return fails.then(coolIfTooMany);
  }

  /** The error for a request whose every group failed: it lists each attempt. */
  private finalError(
    group: string,
    call: Call,
    unavailable: GroupUnavailable | undefined,
  ): GatewayError {
    const { attempts, errors } = call;
    if (errors.length === 0 && unavailable !== undefined) {
      return new GatewayError(
        "rate_limit",
        `${unavailable.message}. Try again in ${secondsUntil(unavailable.retryAt, this.now())} s.`,
        {
          code: "no_deployments_available",
          retryAfterSeconds: secondsUntil(unavailable.retryAt, this.now()),
          attempts,
        },
      );
    }
    // Every attempt met a retired model: the client's 404, naming the successor(s).
    if (errors.every((e) => e.reason === "model_retired")) {
      const messages = [...new Set(errors.map((e) => e.message))];
      return new GatewayError("model_not_found", messages.join(" "), {
        param: "model",
        code: "model_not_found",
        attempts,
      });
    }
    const summary = attempts
      .map(
        (a) =>
          `[${a.deployment}] ${typeof a.status === "number" ? `${a.status} ` : `${a.status}: `}${a.message}`,
      )
      .join("; ");
    const message = `All ${errors.length} upstream attempt${errors.length === 1 ? "" : "s"} for '${group}' failed: ${summary}`;
    if (errors.every((e) => e.kind === "rate_limit")) {
      const hints = errors
        .map((e) => e.retryAfterSeconds)
        .filter((s): s is number => s !== undefined);
      const retryAfter =
        hints.length > 0
          ? Math.min(...hints)
          : unavailable
            ? secondsUntil(unavailable.retryAt, this.now())
            : undefined;
      return new GatewayError("rate_limit", message, {
        code: errors.at(-1)?.code,
        retryAfterSeconds: retryAfter,
        attempts,
      });
    }
    if (errors.every((e) => e.kind === "timeout"))
      return new GatewayError("timeout", message, { attempts });
    const all503 = errors.every((e) => e.httpStatus === 503);
    return new GatewayError("upstream", message, {
      code: errors.length === 1 ? errors[0]!.code : "all_attempts_failed",
      httpStatus: all503 ? 503 : 502,
      attempts,
    });
  }
}

/**
 * An upstream's "no such model" for a model the catalog says is deprecated, shut down or
 * within 90 days of it (or one the upstream itself called retired) as the retired-model
 * error naming the successor; any other error as it is.
 */
function asRetired(deployment: Deployment, e: GatewayError): GatewayError {
  const retired =
    e.reason === "model_retired" ||
    (e.reason === "not_found" && lifecycleState(deployment.spec, new Date()) !== undefined);
  if (!retired) return e;
  return upstreamError(
    "model_retired",
    retiredMessage(deployment.group, deployment.spec, deployment.model, e.message),
    { cause: e },
  );
}

function attemptStatus(e: GatewayError): AttemptRecord["status"] {
  if (e.kind === "timeout") return "timeout";
  if (e.kind === "rate_limit") return 429;
  if (e.reason === "unreachable") return "network";
  if (e.reason === "model_retired") return 404;
  return e.httpStatus ?? 502;
}

function earliest(a: GroupUnavailable | undefined, b: GroupUnavailable): GroupUnavailable {
  return a === undefined || b.retryAt < a.retryAt ? b : a;
}

function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
