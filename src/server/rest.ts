/**
 * REST transcoding from `google.api.http` annotations: each annotated unary method of the
 * served services becomes a JSON route, its request read from the JSON body (`body: "*"`)
 * or from the path's variables and the query (`rest-path.ts`). REST is served as one more
 * protocol beside gRPC, gRPC-Web and Connect: the same service implementation, called
 * through the same interceptors by connect-es's `invokeUnaryImplementation`, exactly as its
 * own protocol handlers do. Only the framing differs: the request is OpenAI JSON, the answer is written
 * by `rest-json.ts` (an image's base64 straight from its bytes, never through a
 * multi-megabyte JSON string), and errors take OpenAI's shape.
 */
import {
  create,
  type DescMessage,
  type DescMethod,
  fromJson,
  getOption,
  hasOption,
  type JsonWriteOptions,
  type MessageShape,
  toJson,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { invalidParam } from "../errors/errors.ts";
import { connectToOpenAI, toConnectError } from "../errors/render.ts";
import { http } from "../gen/google/api/annotations_pb.js";
import { kBufferLease, kViaRest } from "../call/call-info.ts";
import { invokeUnaryImplementation, mergeNonProtocolHeaders } from "./connect-internals.ts";
import { type CallBody, tooLarge } from "./exchanges.ts";
import { checkJsonBody } from "./json-check.ts";
import { isMultipart, readMultipart, takesUploads } from "./rest-multipart.ts";
import { matchTemplate, type PathTemplate, parseTemplate, requestJson } from "./rest-path.ts";
import { messageToJsonBytes } from "./rest-json.ts";
import { serveEventStream } from "./rest-stream.ts";
import {
  clientGoneController,
  clientRequestId,
  header,
  type NodeRequest,
  type NodeResponse,
  requestUrl,
  webHeaders,
} from "./universal.ts";

export interface RestRoute {
  verb: string;
  /** The annotation's path template. */
  path: string;
  method: DescMethod;
  /** The method's implementation, as registered with the Connect router. */
  spec: Extract<MethodImplSpec, { kind: "unary" }>;
  /**
   * A server-streaming method annotated with the same route and request: what a body with
   * `stream: true` calls, answered as server-sent events (`rest-stream.ts`).
   */
  stream?: Extract<MethodImplSpec, { kind: "server_streaming" }>;
  template: PathTemplate;
  /** `*`: the request is the JSON body; empty: it comes from the path and query parameters. */
  body: "*" | "";
  /** The annotation's `response_body`: the answer is this field's JSON (a bare array, say). */
  responseBody?: string;
}

/** A route that matched a request, with its path variables' values. */
export interface RestMatch extends RestRoute {
  variables: ReadonlyMap<string, string> | undefined;
}

/** The REST routes: exact paths by a map lookup, templated ones in annotation order. */
export class RestRoutes {
  readonly #exact = new Map<string, RestRoute>();
  readonly #templated: RestRoute[] = [];

  add(route: RestRoute): void {
    const key = routeKey(route.verb, route.path);
    if (this.#exact.has(key) || this.#templated.some((r) => routeKey(r.verb, r.path) === key))
      throw new Error(`${route.method.parent.typeName}/${route.method.name}: ${key} is taken`);
    if (route.template.variable) this.#templated.push(route);
    else this.#exact.set(key, route);
  }

  all(): RestRoute[] {
    return [...this.#exact.values(), ...this.#templated];
  }

  match(verb: string, path: string): RestMatch | undefined {
    const exact = this.#exact.get(routeKey(verb, path));
    if (exact !== undefined) return { ...exact, variables: undefined };
    for (const route of this.#templated) {
      if (route.verb !== verb) continue;
      const variables = matchTemplate(route.template, path);
      if (variables !== undefined) return { ...route, variables };
    }
    return undefined;
  }
}

/** Builds the routes from the annotations. Patterns it cannot serve stop startup. */
export function restRoutesFrom(services: readonly ServiceImplSpec[]): RestRoutes {
  const routes = new RestRoutes();
  const streams: Extract<MethodImplSpec, { kind: "server_streaming" }>[] = [];
  for (const service of services) {
    for (const spec of Object.values(service.methods)) {
      if (spec.kind === "server_streaming" && hasOption(spec.method, http)) {
        streams.push(spec);
        continue;
      }
      const method = spec.method;
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      const { case: verb, value: path } = rule.pattern;
      const where = `${method.parent.typeName}/${method.name}`;
      if (verb === undefined || verb === "custom")
        throw new Error(`${where}: unsupported http pattern`);
      if (spec.kind !== "unary") throw new Error(`${where}: only unary methods can be REST routes`);
      if (rule.body !== "*" && rule.body !== "")
        throw new Error(`${where}: only body "*" or none is supported`);
      let template: PathTemplate;
      try {
        template = parseTemplate(path, method.input);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      let responseBody: string | undefined;
      if (rule.responseBody !== "") {
        const field = method.output.fields.find((f) => f.name === rule.responseBody);
        if (field === undefined)
          throw new Error(
            `${where}: response_body ${rule.responseBody} is not a field of the answer`,
          );
        responseBody = field.jsonName;
      }
      routes.add({
        verb: verb.toUpperCase(),
        path,
        method,
        spec,
        template,
        body: rule.body,
        ...(responseBody === undefined ? {} : { responseBody }),
      });
    }
  }
  // A server-streaming method shares a unary method's route: `stream: true` in the body picks it.
  for (const spec of streams) {
    const method = spec.method;
    const rule = getOption(method, http);
    const where = `${method.parent.typeName}/${method.name}`;
    const route = routes
      .all()
      .find(
        (r) =>
          r.verb === rule.pattern.case?.toUpperCase() &&
          r.path === rule.pattern.value &&
          r.body === "*" &&
          rule.body === "*" &&
          r.method.input.typeName === method.input.typeName,
      );
    if (route === undefined || route.stream !== undefined)
      throw new Error(
        `${where}: a streaming method must share the route and request of one unary method with body "*"`,
      );
    route.stream = spec;
  }
  return routes;
}

export function routeKey(verb: string, path: string): string {
  return `${verb} ${path}`;
}

/** Request headers that describe the REST framing, not the call, and so are not passed on. */
const FRAMING_HEADERS = new Set([
  "content-length",
  "content-encoding",
  "accept-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "te",
  "upgrade",
  "accept",
  "connect-timeout-ms",
  "connect-protocol-version",
  "connect-content-encoding",
  "connect-accept-encoding",
]);

export interface RestOptions {
  maxBodyBytes: number;
  /** Edits and variations (their images in the body): multipart, JSON. */
  maxUploadBytes: number;
  /** The Connect router's interceptors: every protocol's calls pass through the same ones. */
  interceptors: Interceptor[];
  /** How the Connect JSON protocol writes answers; REST answers match it. */
  jsonOptions: Partial<JsonWriteOptions>;
}

/** Ends a finished call's signal without building a DOMException (with its stack) per call. */
const CALL_DONE = new ConnectError("the call is over", Code.Canceled);

/**
 * Serves one REST call. `body` reads the request body once the gateway has checked the key
 * and admitted the call (rejecting with the reason when either failed); large buffers come
 * from the lease in `values`, which the caller releases when `res` closes.
 */
export async function serveRest(
  route: RestMatch,
  req: NodeRequest,
  res: NodeResponse,
  options: RestOptions,
  values: ContextValues,
  body: CallBody,
) {
  // Edits and variations also come as OpenAI's multipart/form-data, read as it streams.
  const uploads = takesUploads(route.method.input);
  const multipart = uploads && isMultipart(header(req, "content-type"));
  if (route.body === "*") {
    try {
      const max = uploads ? options.maxUploadBytes : options.maxBodyBytes;
      if (multipart) expectDeclaredLength(req, max);
      else expectJsonBody(req, max, uploads);
    } catch (e) {
      body.refuse();
      return writeOpenAIError(res, toConnectError(e), clientRequestId(req));
    }
  }
  // The call's one signal: aborted when the client goes away, and when the call is over.
  const controller = clientGoneController(res);
  const context = restContext(route, req, controller.signal, values);
  const lease = values.get(kBufferLease);
  try {
    let input: MessageShape<DescMessage>;
    let streaming: Extract<MethodImplSpec, { kind: "server_streaming" }> | undefined;
    try {
      if (multipart) {
        // Checked against the message (json-check) and decoded as it is read.
        input = await body.consume((r, limit, signal) =>
          readMultipart(r, route.method.input, limit, signal, lease?.allocate),
        );
      } else {
        // A route without a body still waits for admission (its empty body is read).
        const bytes = await body.read();
        let parsed: unknown = route.body === "*" ? parseJsonBody(bytes) : {};
        // Without a body, the request's fields come from the query; with one, from the body alone.
        const query = route.body === "*" ? undefined : new URL(requestUrl(req)).searchParams;
        parsed = requestJson(route.method.input, parsed, route.variables, query);
        checkJsonBody(route.method.input, parsed);
        input = decodeInput(route.method, parsed);
      }
      if (route.stream !== undefined && (input as { stream?: boolean }).stream === true) {
        streaming = route.stream;
      }
    } catch (e) {
      // Refused before its message was read: the call still passes the interceptors (request
      // id, logs, metrics), with an empty message.
      body.refuse();
      await failCall(context, e, options.interceptors);
    }
    if (streaming !== undefined) {
      return await serveEventStream(streaming, context, input!, res, options.interceptors);
    }
    const output = await invokeUnaryImplementation(
      route.spec,
      context,
      input!,
      options.interceptors,
    );
    const out =
      route.responseBody === undefined
        ? messageToJsonBytes(route.method.output, output, options.jsonOptions, lease?.allocate)
        : Buffer.from(
            JSON.stringify(
              (toJson(route.method.output, output, options.jsonOptions) as Record<string, unknown>)[
                route.responseBody
              ] ?? null,
            ),
          );
    const headers = Object.fromEntries(context.responseHeader);
    headers["content-type"] = "application/json";
    headers["content-length"] = String(out.byteLength);
    res.writeHead(200, headers);
    res.end(out);
  } catch (e) {
    const err = toConnectError(e);
    const headers = new Headers(context.responseHeader);
    mergeNonProtocolHeaders(headers, err.metadata);
    // An error raised before the interceptors gave the call its request id falls back to the client's.
    writeOpenAIError(res, err, headers.get("x-request-id") ?? clientRequestId(req), headers);
  } finally {
    controller.abort(CALL_DONE);
  }
}

/**
 * Fails a call that ended before its message was read (key, admission, body) through the
 * interceptors, with an empty message, so it is reported like any other call; rejects with
 * the error as the interceptors left it (request id, ErrorInfo, cost headers).
 */
export function failCall(
  context: HandlerContext,
  error: unknown,
  interceptors: Interceptor[],
): Promise<never> {
  const spec = {
    kind: "unary",
    method: context.method,
    impl: () => {
      throw error;
    },
  } as unknown as Extract<MethodImplSpec, { kind: "unary" }>;
  return invokeUnaryImplementation(
    spec,
    context,
    create(context.method.input as DescMessage),
    interceptors,
  ) as Promise<never>;
}

/**
 * The call's context, as connect-es's protocol handlers give one to the implementation.
 * Built here rather than by `createHandlerContext`, whose deadline controller and linked
 * controller (three abort listeners added, then removed, per call) cost more than the rest
 * of a small call's framing: a REST call has no deadline header, and one signal suffices.
 */
function restContext(
  route: RestRoute,
  req: NodeRequest,
  signal: AbortSignal,
  values: ContextValues,
): HandlerContext {
  return {
    service: route.method.parent,
    method: route.method,
    protocolName: "rest",
    requestMethod: req.method ?? "POST",
    url: requestUrl(req),
    signal,
    timeoutMs: () => undefined,
    // The client's headers, without those that frame the REST exchange rather than the call.
    requestHeader: webHeaders(req.headers, FRAMING_HEADERS),
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: values.set(kViaRest, true),
  };
}

/** The request message, or the error Connect's JSON protocol gives a body it cannot decode. */
function decodeInput(method: DescMethod, parsed: unknown) {
  try {
    return fromJson(method.input, parsed as never);
  } catch (e) {
    throw ConnectError.from(e, Code.InvalidArgument);
  }
}

/** Writes OpenAI's error envelope with the contract's status and headers. */
export function writeOpenAIError(
  res: NodeResponse,
  err: ConnectError,
  requestId: string,
  extra?: Headers,
): void {
  const { status, body } = connectToOpenAI(err);
  const headers: Record<string, string> = extra ? Object.fromEntries(extra) : {};
  headers["content-type"] = "application/json";
  headers["x-request-id"] = requestId;
  headers["x-imagegate-cost-usd"] ??= "0";
  const retryAfter = err.metadata.get("retry-after");
  if (retryAfter !== null) headers["retry-after"] = retryAfter;
  if (res.headersSent) return void res.end();
  res.writeHead(status, headers);
  res.end(JSON.stringify(body));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Before the body is read: 400 for a wrong content type, 413 for a declared length past the
 * limit. `uploads`: the route also takes multipart/form-data (said so in the 400).
 */
function expectJsonBody(req: NodeRequest, maxBytes: number, uploads = false): void {
  const contentType = header(req, "content-type") ?? "";
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType)) {
    throw invalidParam(
      undefined,
      uploads
        ? `Invalid Content-Type header (${contentType || "none"}); the request body must be multipart/form-data or JSON sent as application/json.`
        : `Invalid Content-Type header (${contentType || "none"}); the request body must be JSON sent as application/json.`,
    );
  }
  expectDeclaredLength(req, maxBytes);
}

function expectDeclaredLength(req: NodeRequest, maxBytes: number): void {
  const declared = Number(header(req, "content-length"));
  if (declared > maxBytes) throw tooLarge(maxBytes);
}

/** The body as JSON: 400 for bad UTF-8 or bad JSON. */
function parseJsonBody(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw invalidParam(undefined, "The request body is not valid UTF-8.");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalidParam(
      undefined,
      `We could not parse the JSON body of your request: ${(e as Error).message}. The body must be a JSON object.`,
    );
  }
}
