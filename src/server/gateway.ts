/**
 * Assembles the gateway: the Connect router with its interceptors and services, the REST
 * routes derived from the annotations, the operations endpoints, and the listener.
 */
import {
  Code,
  ConnectError,
  type ContextValues,
  createConnectRouter,
  createContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { join } from "node:path";
import {
  compressionBrotli,
  compressionGzip,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Catalog } from "../catalog/catalog.ts";
import { validateEdit } from "../catalog/edit-rules.ts";
import { createEditService } from "../service/edit-service.ts";
import { takesUploads } from "./rest-multipart.ts";
import { validateRequest } from "../catalog/validate.ts";
import { DEFAULT_TIMEOUT_SECONDS } from "../config/deployment.ts";
import { keyId } from "../config/keys.ts";
import { ConfigError } from "../config/env.ts";
import type { GatewayConfig } from "../config/load.ts";
import { GatewayError } from "../errors/errors.ts";
import { registerSecrets } from "../errors/redact.ts";
import { toConnectError } from "../errors/render.ts";
import { ImageService } from "../gen/imagegate/v1/images_pb.js";
import { AdminService } from "../gen/imagegate/admin/v1/admin_pb.js";
import { adminInterceptor } from "../admin/interceptor.ts";
import { createAdminService } from "../admin/service.ts";
import { ApiKeySync } from "../admin/api-keys.ts";
import { AdminJobs } from "../admin/jobs.ts";
import { KEYS_CHANNEL, KeysRepository } from "../db/keys.ts";
import type { Logger } from "../log/logger.ts";
import { loadPrices, type PriceList } from "../pricing/pricing.ts";
import { ADAPTERS, DESCRIPTORS } from "../providers/index.ts";
import type { ProviderAdapter } from "../providers/types.ts";
import { ModelResolver } from "../router/resolve.ts";
import { Router } from "../router/router.ts";
import { ImageDelivery } from "../service/deliver.ts";
import { createImageStreamService } from "../service/image-stream.ts";
import { createImageService } from "../service/image-service.ts";
import { createModelService } from "../service/models.ts";
import { BufferPool, type BufferLease, type BufferPoolOptions } from "../runtime/buffer-pool.ts";
import { installLargeBytesWriter, withResultMemory } from "../runtime/protobuf-writer.ts";
import { ImageDownloader } from "../store/download.ts";
import { FILES_PATH, openImageFiles } from "../store/files.ts";
import { authenticate, authInterceptor, kKey } from "../auth/interceptor.ts";
import { bearerToken, KeyRing } from "../auth/keys.ts";
import { RpmLimiter } from "../auth/rate.ts";
import { type Database, ledgerOn, openDatabase } from "../db/database.ts";
import { dataDir, defaultDatabasePath } from "../db/paths.ts";
import { SpendLogWriter } from "../db/spend-log.ts";
import { JournaledLedger } from "../db/journaled-ledger.ts";
import { PostgresLink } from "../db/postgres-link.ts";
import { SpendJournal } from "../db/spend-journal.ts";
import { type KeyRateLimiter, SharedRpmLimiter } from "../auth/shared-rate.ts";
import { SharedRouterState } from "../router/shared-state.ts";
import type { RouterState } from "../router/state.ts";
import type { RedisLink } from "../shared/redis-link.ts";
import { instrumentAdapter } from "../telemetry/adapters.ts";
import { ATTR } from "../telemetry/instruments.ts";
import { telemetryInterceptor } from "../telemetry/interceptor.ts";
import { createTelemetry, type Telemetry } from "../telemetry/telemetry.ts";
import { HEADER, kBufferLease } from "../call/call-info.ts";
import type { UniversalHandler } from "./connect-internals.ts";
import { configSecrets } from "./config-secrets.ts";
import { isConsolePath, loadConsole, serveConsole } from "./console.ts";
import { serveImageFile } from "./files.ts";
import { spendLogInterceptor } from "./spend-log.ts";
import { KeyMiss } from "./key-miss.ts";
import { registerHealth } from "./health.ts";
import { OPEN_SERVICES } from "../call/open-services.ts";
import { registerReflection } from "./reflection.ts";
import { fixRpcResponse } from "./rpc-fixups.ts";
import { isRpcRequest, rpcNotFound } from "./rpc-not-found.ts";
import {
  type AnyNodeRequest,
  type AnyNodeResponse,
  clientRequestId,
  header,
  type NodeRequest,
  type NodeResponse,
  requestUrl,
  universalRequest,
  webHeaders,
} from "./universal.ts";
import { Admission } from "./admission.ts";
import { type CallBody, type Exchange, Exchanges } from "./exchanges.ts";
import { callInfoInterceptor } from "./interceptors.ts";
import { checkEveryMs, type Listener, listen, MAX_HEADER_BYTES } from "./listener.ts";
import { failCall, restRoutesFrom, serveRest, writeOpenAIError } from "./rest.ts";

const MAX_URL_LENGTH = 8192;
/** How often pooled memory that no request used since the last time is let go. */
const BUFFER_TRIM_MS = 30_000;

export interface GatewayOptions {
  config: GatewayConfig;
  catalog: Catalog;
  logger: Logger;
  adapters?: readonly ProviderAdapter[];
  prices?: PriceList;
  /** Traces, metrics and request logs; by default: `/metrics` only, no request log. */
  telemetry?: Telemetry;
  /** The pool of large per-request buffers (tests poison released memory). */
  bufferPool?: BufferPoolOptions;
}

export interface Gateway {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Open client connections, as the listening server counts them. */
  connections(): Promise<number>;
  /** Stops accepting, lets in-flight requests finish (up to `graceMs`), then closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { config, catalog, logger } = options;
  let ready = false;
  // Large bytes (images) serialized to protobuf without intermediate copies (gRPC, Connect).
  const writerRefused = installLargeBytesWriter();
  if (writerRefused !== undefined) logger.log("warn", writerRefused);

  const telemetry =
    options.telemetry ?? (await createTelemetry({ env: config.env, logFormat: "none" }));
  const keys = new KeyRing(config.masterKey, config.keys);
  registerSecrets(configSecrets(config));
  const database = await openGatewayDatabase(config, logger);
  // Postgres may be down at start and later: the link migrates once it answers, and each
  // time it is back the journal is replayed and keys reloaded (see postgres-link.ts).
  const dbLink =
    database.dialect === "postgres" ? new PostgresLink(database, { logger }) : undefined;
  const holdTtlMs = 2 * (config.router.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000 + 60_000;
  const onSpendError = (e: unknown) =>
    logger.log("error", "writing spend failed", { error: String(e) });
  const spend =
    database.dialect === "postgres"
      ? new JournaledLedger(database, dbLink!, openSpendJournal(config, database.where), {
          holdTtlMs,
          allowWhenUnavailable: config.allowRequestsOnDbUnavailable,
          onFlushError: onSpendError,
        })
      : ledgerOn(database, {
          names: new Map(config.keys.map((k) => [k.name, keyId(k)])),
          // Longer than any request holds it: the router's deadline covers every attempt.
          holdTtlMs,
          onFlushError: onSpendError,
        });
  if (spend instanceof JournaledLedger) {
    const replayed = spend.adopt();
    if (replayed > 0)
      logger.log(
        "info",
        `spend journal: ${replayed} entries of earlier runs found; written once the database answers`,
      );
  }
  if (!(spend instanceof JournaledLedger) && (spend.unmigratedNames?.length ?? 0) > 0) {
    logger.log(
      "warn",
      `spend kept by key name for ${spend.unmigratedNames!.map((n) => `'${n}'`).join(", ")} belongs to no configured key; it stays in ${database.where} (table spend) until a key of that name is configured`,
    );
  }
  /** A database failure worth a log line: not one more symptom of an outage already reported. */
  const dbError = (what: string) => (e: unknown) => {
    if (dbLink?.reportFailure(e)) return;
    logger.log("error", what, { error: String(e) });
  };
  // A log kept in memory would only grow: rows are written where they last.
  const spendLog =
    database.where === ":memory:"
      ? undefined
      : new SpendLogWriter(database, {
          // With Postgres, rows go through the spend journal: kept across outages and crashes.
          sink: spend instanceof JournaledLedger ? spend.spendLog : undefined,
          onError: dbError("writing the spend log failed"),
        });
  // Keys made through the management API, beside the config's (listed there as `config`).
  const keyRepo = new KeysRepository(database, Date.now, async () => {
    if (spend instanceof JournaledLedger) await spend.flush();
  });
  const keySync = new ApiKeySync(keyRepo, keys, { onError: dbError("reloading keys failed") });
  // Only the master key makes API keys: without one, a key the ring does not know is no key.
  const keyMiss = config.masterKey === undefined ? undefined : new KeyMiss(keyRepo, keys);
  const jobs = new AdminJobs({
    database,
    keys: keyRepo,
    sync: keySync,
    logger,
    retentionMs: config.spendLogsRetentionMs,
  });
  const loadKeys = async () => {
    await keyRepo.syncConfigKeys(
      config.keys.map((k) => ({
        token: keyId(k),
        alias: k.name,
        models: k.models,
        rpmLimit: k.rpm_limit,
        maxBudget: k.max_budget,
      })),
    );
    await keySync.refresh();
    await jobs.prune();
  };
  // Another replica's change to a key (a block, a deletion) reaches this one at once, not at
  // the next reload: Postgres' NOTIFY, a burst of them one reload.
  let reloadQueued = false;
  let keysClosed = false;
  const keyChanges =
    database.dialect === "postgres"
      ? database.listen(KEYS_CHANNEL, () => {
          if (reloadQueued) return;
          reloadQueued = true;
          setTimeout(() => {
            reloadQueued = false;
            if (!keysClosed) keySync.refresh().catch(dbError("reloading keys failed"));
          }, 20).unref();
        })
      : undefined;
  if (dbLink === undefined) await loadKeys();
  else {
    dbLink.onUp(loadKeys);
    dbLink.onUp(() => (spend as JournaledLedger).flush());
    await dbLink.start();
    telemetry.meter
      .createObservableGauge("imagegate.database.up", {
        unit: "1",
        description:
          "1 while the shared database (database_url) answers, 0 while budgeted keys are refused and spend is journaled locally",
      })
      .addCallback((result) => result.observe(dbLink.up ? 1 : 0));
  }
  const prices = options.prices ?? loadPrices(catalog);
  const resolver = new ModelResolver(config, catalog);
  // With Redis, replicas share key limits, cooldowns and routing figures; else all in memory.
  // ioredis is loaded only with Redis configured (memory every other process would carry).
  const redis: RedisLink | undefined =
    config.redis === undefined
      ? undefined
      : new (await import("../shared/redis-link.ts")).RedisLink({ url: config.redis.url, logger });
  let routerState: RouterState | undefined;
  let rpmLimiter: KeyRateLimiter = new RpmLimiter();
  if (redis !== undefined) {
    await redis.ready();
    routerState = new SharedRouterState(redis, { deployments: resolver.deployments() });
    rpmLimiter = new SharedRpmLimiter(redis);
    telemetry.meter
      .createObservableGauge("imagegate.shared_state.up", {
        unit: "1",
        description:
          "1 while the Redis replicas share is reachable, 0 while each serves on its own state",
      })
      .addCallback((result) => result.observe(redis.up ? 1 : 0));
  }
  const router = new Router({
    settings: config.router,
    adapters: (options.adapters ?? ADAPTERS).map((a) => instrumentAdapter(a, telemetry)),
    resolver,
    validate: (deployment, request, modelName, edit) => {
      if (edit !== undefined) validateEdit(edit, deployment.spec, modelName);
      validateRequest(request, deployment.spec, modelName, edit?.kind);
    },
    state: routerState,
  });
  // OpenAI's JSON always carries its numbers (`usage.input_tokens_details.image_tokens: 0`);
  // proto3 would drop zero-valued implicit fields. REST answers are written the same way.
  const jsonOptions = { alwaysEmitImplicit: true };
  // Every protocol's calls pass through these, REST's included. The key is checked from
  // the headers and admission taken before the body is read (`callBody` below); the auth
  // interceptor keeps what needs the decoded request.
  const interceptors = [
    callInfoInterceptor(logger),
    telemetryInterceptor(telemetry),
    // Before the key check: a request refused for its key (401) or rate (429) is a row too.
    ...(spendLog ? [spendLogInterceptor(spendLog)] : []),
    authInterceptor(keys, spend, rpmLimiter),
    adminInterceptor({ hasMasterKey: config.masterKey !== undefined, open: keys.open }),
  ];
  const admission = new Admission(config.server.maxConcurrent, config.server.maxQueued);
  const exchanges = new Exchanges({
    clientTimeoutMs: config.server.clientTimeoutMs,
    writeTimeoutMs: config.server.writeTimeoutMs,
    checkEveryMs: checkEveryMs(config.server),
  });
  const connectRouter = createConnectRouter({
    interceptors,
    // The gateway reads each body itself first, within the method's limit (`callBody`).
    readMaxBytes: Math.max(config.server.maxBodyBytes, config.server.maxUploadBytes),
    // connect-es ignores unknown JSON fields by default; Connect JSON rejects them as REST does.
    jsonOptions: { ...jsonOptions, ignoreUnknownFields: false },
    acceptCompression: [compressionGzip, compressionBrotli],
    // Compressed requests are read, but answers are not compressed: images do not shrink,
    // and gzipping megabytes per response costs more than it saves.
    compressMinBytes: Number.MAX_SAFE_INTEGER,
  });
  const files = await openImageFiles(config.storage, logger);
  const downloader = new ImageDownloader(config.imageDownload);
  const delivery = new ImageDelivery({ files, downloader, rehostUrls: config.rehostUrls });
  const imageService: Partial<ServiceImpl<typeof ImageService>> = {
    ...createImageService(resolver, router, prices, delivery),
    ...createImageStreamService(resolver, router, prices, delivery),
    ...createEditService({ resolver, router, prices, delivery }, downloader),
    ...createModelService(config, resolver),
  };
  connectRouter.service(ImageService, imageService);
  const adminService = createAdminService({
    database,
    keys: keyRepo,
    sync: keySync,
    spendLog,
    logger,
    models: {
      deployments: () => resolver.deployments(),
      prices,
      isCooling: (id) => router.isCooling(id),
      status: (id) => router.status(id),
      statusWindowMs: router.statusWindowMs,
      secrets: configSecrets(config),
    },
  });
  connectRouter.service(AdminService, adminService);
  registerHealth(connectRouter, { ready: () => ready });
  // Last: reflection describes every service registered before it.
  registerReflection(connectRouter);
  telemetry.meter
    .createObservableGauge("imagegate.deployment.healthy", {
      unit: "1",
      description: "1 while a deployment is in rotation, 0 while it cools down",
    })
    .addCallback((result) => {
      for (const d of resolver.deployments()) {
        result.observe(router.isCooling(d.id) ? 0 : 1, {
          [ATTR.deployment]: d.id,
          [ATTR.model]: d.group,
          [ATTR.provider]: d.provider,
        });
      }
    });
  for (const d of resolver.deployments()) {
    if (d.costPerImage === undefined && prices.lookup(d.provider, d.spec.model) === undefined) {
      logger.log(
        "warn",
        `model '${d.group}' (deployment ${d.id}, ${d.provider}/${d.model}) has no known price: its requests are counted as unpriced; set model_info.output_cost_per_image`,
      );
    }
  }
  // Credentials the providers find themselves (default chains, metadata servers) are tried
  // once in the background: a source that fails is a warning naming the deployment.
  for (const d of resolver.deployments()) {
    void DESCRIPTORS[d.provider]
      .probeCredentials?.(d)
      .then((warning) => warning !== undefined && logger.log("warn", warning));
  }

  const rpc = new Map<string, UniversalHandler>(
    connectRouter.handlers.map((h) => [h.requestPath, h]),
  );
  // REST serves the annotated methods of the same implementations, through the same interceptors.
  const rest = restRoutesFrom([
    createServiceImplSpec(ImageService, imageService),
    createServiceImplSpec<typeof AdminService>(AdminService, adminService),
  ]);
  const restOptions = {
    maxBodyBytes: config.server.maxBodyBytes,
    maxUploadBytes: config.server.maxUploadBytes,
    interceptors,
    jsonOptions,
  };

  const consoleFiles = loadConsole();
  const buffers = new BufferPool(options.bufferPool);
  const trimBuffers = setInterval(() => buffers.trim(), BUFFER_TRIM_MS).unref();

  let inflight = 0;
  let idle: (() => void) | undefined;
  const handler = (anyReq: AnyNodeRequest, anyRes: AnyNodeResponse) => {
    const req = anyReq as NodeRequest;
    const res = anyRes as NodeResponse;
    inflight += 1;
    const exchange = exchanges.open(req, res);
    let lease: BufferLease | undefined;
    res.once("close", () => {
      exchanges.close(exchange);
      lease?.release();
      if (exchange.admitted) admission.release();
      inflight -= 1;
      if (inflight === 0) idle?.();
    });
    if (!ready && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    let work: Promise<void>;
    if (req.httpVersionMajor === 2 && headerListBytes(req) > MAX_HEADER_BYTES) {
      exchanges.refuseBody(exchange);
      work = serveHeadersTooLarge(req, res);
    } else {
      const url = req.url ?? "/";
      const path = url.split("?", 1)[0]!;
      const uHandler = rpc.get(path);
      const route = uHandler ? undefined : rest.match(req.method ?? "", path);
      if (url.length > MAX_URL_LENGTH) work = serveUrlTooLong(req, res);
      else if (uHandler || route) {
        // Pooled memory for one API call, given back once its answer is written (or abandoned).
        lease = buffers.lease();
        const values = createContextValues().set(kBufferLease, lease);
        const body = callBody(exchange, uHandler?.method ?? route!.method, values);
        work = uHandler
          ? serveRpc(uHandler, req, res, values, body)
          : serveRest(route!, req, res, restOptions, values, body);
      } else work = serveOther(req, res, path);
    }
    work.catch((e: unknown) => {
      if (ConnectError.from(e).code === Code.Canceled || ConnectError.from(e).code === Code.Aborted)
        return;
      logger.log("error", "request failed outside the handler", {
        path: (req.url ?? "/").split("?", 1)[0],
        error: String(e),
      });
      if (!res.headersSent) writeOpenAIError(res, toConnectError(e), clientRequestId(req));
      else res.destroy();
    });
  };

  /**
   * An API call's stages before its message: the key, from the headers; then admission;
   * then the body, within the client timeout. Nothing is read from a stranger, and what
   * is read is counted by admission. Open services (health, reflection) need no key and
   * are not admitted.
   */
  const callBody = (exchange: Exchange, method: DescMethod, values: ContextValues): CallBody => {
    const { req } = exchange;
    const service = method.parent;
    const refuse = () => exchanges.refuseBody(exchange);
    // Edits and variations carry images: their bodies may be as large as max_upload_bytes.
    const limit = takesUploads(method.input)
      ? config.server.maxUploadBytes
      : config.server.maxBodyBytes;
    const max = req.headers["content-type"]?.startsWith("application/grpc") ? limit + 5 : limit;
    const readBody = () => exchanges.readBody(exchange, max);
    const consumeBody = <T>(
      consume: (req: NodeRequest, limit: number, signal: AbortSignal) => Promise<T>,
    ) => exchanges.consumeBody(exchange, (signal) => consume(req, limit, signal));
    if (OPEN_SERVICES.has(service.typeName))
      return { admit: () => Promise.resolve(), read: readBody, consume: consumeBody, refuse };
    let keyFound: Promise<void> | undefined;
    if (!keys.open) {
      const authorization = header(req, "authorization");
      try {
        values.set(kKey, authenticate(keys, authorization));
      } catch (e) {
        // A key the ring does not know yet may have been made on another replica just now.
        const token = bearerToken(authorization ?? null);
        const lookup =
          token !== undefined && keyMiss !== undefined && keys.lookup(token) === undefined
            ? keyMiss.find(token)
            : undefined;
        if (lookup === undefined) {
          const refused = () => Promise.reject(e);
          return { admit: refused, read: refused, consume: refused, refuse };
        }
        keyFound = lookup.then(() => {
          values.set(kKey, authenticate(keys, authorization));
        });
        keyFound.catch(() => {});
      }
    }
    const body = admittedBody(exchange, readBody, consumeBody, refuse);
    if (keyFound === undefined) return body;
    const found = keyFound;
    return {
      admit: () => found.then(body.admit),
      read: () => found.then(body.read),
      consume: (consume) => found.then(() => body.consume(consume)),
      refuse,
    };
  };

  /** The call's body once admitted: admission first, then the body within the client timeout. */
  const admittedBody = (
    exchange: Exchange,
    readBody: () => Promise<Buffer>,
    consumeBody: CallBody["consume"],
    refuse: () => void,
  ): CallBody => {
    const { res } = exchange;
    const admitted = () => {
      exchange.admitted = true;
    };
    const admit = (): Promise<void> | undefined => {
      const waiting = admission.acquire(res);
      if (waiting === undefined) admitted();
      return waiting?.then(admitted);
    };
    return {
      admit: async () => admit(),
      read: () => {
        let waiting: Promise<void> | undefined;
        try {
          waiting = admit();
        } catch (e) {
          return Promise.reject(e);
        }
        // No extra promise when a slot is free.
        return waiting === undefined ? readBody() : waiting.then(readBody);
      },
      consume: async (consume) => {
        await admit();
        return consumeBody(consume);
      },
      refuse,
    };
  };

  /** The gateway's own paths: probes, metrics, image files, the console. */
  const serveOther = (req: NodeRequest, res: NodeResponse, path: string): Promise<void> => {
    const contentType = req.headers["content-type"];
    if (isRpcRequest(contentType, path)) {
      req.resume();
      return universalResponseToNodeResponse(
        rpcNotFound(contentType, path, clientRequestId(req)),
        res,
      );
    }
    // Answers outside the API carry a request id too (the API's come from the interceptors).
    res.setHeader(HEADER.requestId, clientRequestId(req));
    if (path === "/healthz" || path === "/readyz") return serveProbe(path, ready, res);
    if (path === "/metrics" && req.method === "GET")
      return Promise.resolve(telemetry.metricsHandler(req, res));
    if (path.startsWith(FILES_PATH)) return serveImageFile(req, res, files);
    if (isConsolePath(path)) return serveConsole(req, res, path, consoleFiles);
    return serveNotFound(req, res, path);
  };

  /**
   * One RPC: connect-es reads the message from the body the gateway has read. A unary
   * answer's serialized bytes come from the call's pooled memory, given back once the
   * answer is written (a stream's events would pile up there until the stream ends).
   */
  const serveRpc = (
    uHandler: UniversalHandler,
    req: NodeRequest,
    res: NodeResponse,
    values: ContextValues,
    body: CallBody,
  ): Promise<void> => {
    const lease = values.get(kBufferLease);
    return uHandler.method.methodKind === "unary" && lease !== undefined
      ? withResultMemory(lease.allocate, () => serveRpcCall(uHandler, req, res, values, body))
      : serveRpcCall(uHandler, req, res, values, body);
  };

  const serveRpcCall = async (
    uHandler: UniversalHandler,
    req: NodeRequest,
    res: NodeResponse,
    values: ContextValues,
    body: CallBody,
  ) => {
    const uReq = universalRequest(req, res, rpcBody(uHandler, req, values, body), values);
    const uRes = await uHandler(uReq);
    await universalResponseToNodeResponse(
      await fixRpcResponse(uRes, clientRequestId(req), values),
      res,
    );
    // Answered without asking for the body (a content type or method connect-es refuses).
    if (!req.complete) body.refuse();
  };

  /**
   * The body as connect-es reads it: read whole (within the client timeout) for a unary or
   * server-streaming method; passed through as it comes, once admitted, for a method whose
   * client streams (reflection). A call refused before it fails through the interceptors.
   */
  async function* rpcBody(
    uHandler: UniversalHandler,
    req: NodeRequest,
    values: ContextValues,
    body: CallBody,
  ): AsyncGenerator<Uint8Array> {
    const kind = uHandler.method.methodKind;
    const streams = kind === "client_streaming" || kind === "bidi_streaming";
    let bytes: Buffer | undefined;
    try {
      if (streams) await body.admit();
      else bytes = await body.read();
    } catch (e) {
      body.refuse();
      const context = createHandlerContext({
        service: uHandler.service,
        method: uHandler.method,
        protocolName: uHandler.protocolNames[0] ?? "connect",
        requestMethod: req.method ?? "POST",
        url: requestUrl(req),
        requestHeader: webHeaders(req.headers),
        contextValues: values,
      });
      return await failCall(context, e, interceptors);
    }
    if (bytes === undefined) yield* req;
    else yield bytes;
  }

  let listener: Listener;
  try {
    listener = await listen({
      host: config.server.host,
      port: config.server.port,
      tls: config.server.tls,
      limits: config.server,
      handler,
    });
  } catch (e) {
    keySync.stop();
    await jobs.stop();
    await Promise.all([files.close(), downloader.close(), routerState?.close?.(), redis?.close()]);
    await spendLog?.close().catch(() => {});
    await spend.close();
    await dbLink?.close();
    keysClosed = true;
    await keyChanges?.close();
    await database.close();
    throw e;
  }
  ready = true;
  const scheme = listener.tls ? "https" : "http";
  const host = listener.host.includes(":") ? `[${listener.host}]` : listener.host;
  const url = `${scheme}://${host}:${listener.port}`;
  // Known only now: the default base of the image URLs is where the gateway listens.
  files.setBaseUrl(config.server.publicUrl ?? url);

  return {
    url,
    host: listener.host,
    port: listener.port,
    connections: () => listener.connections(),
    async shutdown(graceMs = 30_000) {
      if (!ready) return;
      ready = false;
      listener.stopAccepting();
      listener.closeConnections(false);
      if (inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      listener.closeConnections(true);
      exchanges.stop();
      clearInterval(trimBuffers);
      keySync.stop();
      await jobs.stop();
      await Promise.all([files.close(), downloader.close(), routerState?.close?.()]);
      await redis?.close();
      if (!options.telemetry) await telemetry.shutdown();
      // With the database down, the spend log's rows are lost; spend stays in the journal.
      await spendLog?.close().catch(() => {});
      await spend.close();
      await dbLink?.close();
      keysClosed = true;
      await keyChanges?.close();
      await database.close();
    },
  };
}

/** The spend journal's directory (`spend_journal_dir`, else the data directory's `journal`), made if missing. */
function openSpendJournal(config: GatewayConfig, database: string): SpendJournal {
  const dir = config.spendJournalDir ?? join(dataDir({ ...process.env, ...config.env }), "journal");
  try {
    return new SpendJournal({ dir, database });
  } catch (e) {
    throw new ConfigError(
      `the spend journal's directory ${dir} cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); name a writable one with general_settings.spend_journal_dir`,
    );
  }
}

/**
 * The database: Postgres with `database_url`; else `spend_db` when given; else the embedded
 * file in the user's data directory when something must last (a key with a budget, or a
 * master key, which may make keys through the management API); else in memory.
 */
async function openGatewayDatabase(config: GatewayConfig, logger: Logger): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    // Not migrated here: the gateway's PostgresLink does it once the database answers.
    const { connectPostgres } = await import("../db/postgres.ts");
    return connectPostgres(config.databaseUrl);
  }
  const lasting =
    config.spendDb !== undefined ||
    config.masterKey !== undefined ||
    config.keys.some((k) => k.max_budget !== undefined);
  let path = config.spendDb;
  if (path === undefined && lasting) {
    const found = defaultDatabasePath({ ...process.env, ...config.env });
    path = found.path;
    if (found.legacy !== undefined) {
      logger.log(
        "warn",
        `using ${found.legacy}, the embedded database's old default place in the working directory; move it to ${dataDir({ ...process.env, ...config.env })} or name it with general_settings.spend_db`,
      );
    }
  }
  return openDatabase({ path: lasting ? path! : ":memory:" });
}

async function serveUrlTooLong(req: NodeRequest, res: NodeResponse) {
  req.resume();
  const err = new GatewayError(
    "invalid_request",
    `The request URL is longer than ${MAX_URL_LENGTH} characters.`,
    {
      code: "url_too_long",
      httpStatus: 414,
    },
  );
  writeOpenAIError(res, toConnectError(err), clientRequestId(req));
}

/** HTTP/2 header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2). */
function headerListBytes(req: NodeRequest): number {
  const raw = req.rawHeaders;
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length + (i % 2 === 0 ? 32 : 0);
  return size;
}

/**
 * Node advertises SETTINGS_MAX_HEADER_LIST_SIZE to HTTP/2 clients but accepts larger
 * lists; they get the 431 HTTP/1.1 clients get from Node's parser.
 */
async function serveHeadersTooLarge(req: NodeRequest, res: NodeResponse) {
  const err = new GatewayError(
    "invalid_request",
    `The request headers are larger than ${MAX_HEADER_BYTES} bytes.`,
    { code: "request_header_fields_too_large", httpStatus: 431 },
  );
  writeOpenAIError(res, toConnectError(err), clientRequestId(req));
}

async function serveProbe(path: string, ready: boolean, res: NodeResponse) {
  const ok = path === "/healthz" || ready;
  res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
  res.end(JSON.stringify({ status: ok ? "ok" : "unavailable" }));
}

async function serveNotFound(req: NodeRequest, res: NodeResponse, path: string) {
  req.resume();
  const err = new GatewayError(
    "not_found",
    `Unknown request URL: ${req.method} ${path}. Please check the URL for typos; this gateway serves POST /v1/images/generations, GET /v1/models and GET /v1/models/{model}.`,
  );
  writeOpenAIError(res, toConnectError(err), clientRequestId(req));
}
