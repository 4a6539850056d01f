/**
 * An in-process emulator of Vertex AI image generation, with Google's OAuth token endpoint
 * for service accounts. Used by the tests and by `npm run dev`.
 *
 * - `POST /token`: the JWT-bearer grant. The assertion's RS256 signature is verified (with
 *   node:crypto, independently of the gateway's `jose` signer) against the public key of a
 *   registered service account, and its kid, iss, aud (the key file's `token_uri`), scope,
 *   iat and exp are checked; errors are Google's `{"error", "error_description"}` 400s.
 * - `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:predict`
 *   (Imagen) and `:generateContent` (Gemini image models) require an issued, unexpired access
 *   token for a service account of that project. Bodies, answers and refusals are shared
 *   with the AI Studio emulator (google-images.ts, which says how to provoke refusals).
 *
 * `generateServiceAccountKey` makes a throwaway key file pointing at the emulator.
 * Test hooks: `faults` / `tokenFaults` (or `POST /__emulator/faults` and
 * `/__emulator/token-faults`), `requests`, `tokenRequests`, `tokenLifetimeSeconds`.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  verify,
} from "node:crypto";
import type http from "node:http";
import { FaultQueue, playFault } from "./faults.ts";
import {
  beginCall,
  errorInfo,
  GoogleApiError,
  GoogleImageService,
  googleFaultControl,
  googleFaults,
  listenGoogle,
  notFound,
  type RecordedRequest,
  readBody,
  sendGoogleJson,
  VERTEX_MODELS,
} from "./google-images.ts";
import { isObject, record } from "./http-kit.ts";

export { googleFaults };
export type { RecordedRequest };

const PATH =
  /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):(predict|generateContent)$/;
const SCOPE = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** Google allows an assertion at most an hour of life, and a little clock skew. */
const MAX_ASSERTION_SECONDS = 3600;
const CLOCK_SKEW_SECONDS = 300;
const AUTH_HELP = "See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/** A service-account key file, as the Cloud console downloads it. */
export interface ServiceAccountKeyFile {
  type: "service_account";
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
}

export interface ServiceAccountKeyOptions {
  /** The emulator's token endpoint (or any other `token_uri`). */
  tokenUri: string;
  projectId?: string;
  clientEmail?: string;
  /** Reuse an id (a key id that does not match its key is refused as a bad signature). */
  privateKeyId?: string;
}

/** A throwaway RSA service-account key (2048-bit, PKCS#8 PEM) pointing at `tokenUri`. */
export function generateServiceAccountKey(opts: ServiceAccountKeyOptions): ServiceAccountKeyFile {
  const projectId = opts.projectId ?? "emulator-project";
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return {
    type: "service_account",
    project_id: projectId,
    private_key_id: opts.privateKeyId ?? randomBytes(20).toString("hex"),
    private_key: privateKey,
    client_email: opts.clientEmail ?? `imagegate-dev@${projectId}.iam.gserviceaccount.com`,
    client_id: randomBytes(8).readBigUInt64BE().toString(),
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: opts.tokenUri,
  };
}

export interface VertexEmulatorOptions {
  host?: string;
  port?: number;
  /** Project of the service account created at start (default `emulator-project`). */
  projectId?: string;
  /** Lifetime of issued access tokens (default 3599, as Google). */
  tokenLifetimeSeconds?: number;
  /** Clock in ms; defaults to Date.now. */
  now?: () => number;
}

export interface TokenRequestRecord {
  /** The assertion's `iss`, when it could be read. */
  clientEmail: string | undefined;
  /** Whether an access token was issued. */
  granted: boolean;
  error?: string;
}

export interface VertexEmulator {
  /** e.g. http://127.0.0.1:PORT/v1 — what `api_base` / VERTEXAI_API_BASE takes. */
  baseUrl: string;
  /** e.g. http://127.0.0.1:PORT/token */
  tokenUri: string;
  port: number;
  projectId: string;
  /** A registered key made at start, for `vertex_credentials`. */
  serviceAccount: ServiceAccountKeyFile;
  /** Trusts another key (its public half is derived from the private key). */
  addServiceAccount(key: ServiceAccountKeyFile): void;
  /** Makes and registers a key of a new service account (or of `clientEmail`'s) for this emulator. */
  createServiceAccount(opts?: Omit<ServiceAccountKeyOptions, "tokenUri">): ServiceAccountKeyFile;
  /** Lifetime of tokens issued from now on. */
  tokenLifetimeSeconds: number;
  /** Invalidates every issued access token (as a revocation would). */
  revokeTokens(): void;
  faults: FaultQueue;
  tokenFaults: FaultQueue;
  requests: RecordedRequest[];
  tokenRequests: TokenRequestRecord[];
  close(): Promise<void>;
}

/** A service account; like Google's, it may hold several keys, found by the JWT's kid. */
interface Registered {
  publicKeys: Map<string, KeyObject>;
  projectId: string;
  tokenUri: string;
}

interface Issued {
  clientEmail: string;
  projectId: string;
  expiresAt: number;
}

/** A token-endpoint refusal: `{"error", "error_description"}`. */
class OAuthError extends Error {
  readonly error: string;
  constructor(error: string, description: string) {
    super(description);
    this.error = error;
  }
}

export async function startVertexEmulator(
  opts: VertexEmulatorOptions = {},
): Promise<VertexEmulator> {
  const now = opts.now ?? Date.now;
  const projectId = opts.projectId ?? "emulator-project";
  const accounts = new Map<string, Registered>();
  const tokens = new Map<string, Issued>();
  const faults = new FaultQueue();
  const tokenFaults = new FaultQueue();
  const requests: RecordedRequest[] = [];
  const tokenRequests: TokenRequestRecord[] = [];
  const service = new GoogleImageService("vertex");

  const emulator = {
    tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 3599,
  };

  function addServiceAccount(key: ServiceAccountKeyFile): void {
    const account = accounts.get(key.client_email) ?? {
      publicKeys: new Map(),
      projectId: key.project_id,
      tokenUri: key.token_uri,
    };
    account.publicKeys.set(key.private_key_id, createPublicKey(key.private_key));
    accounts.set(key.client_email, account);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    if (url.pathname === "/__emulator/faults") return googleFaultControl(faults, req, res);
    if (url.pathname === "/__emulator/token-faults") {
      return googleFaultControl(tokenFaults, req, res);
    }
    if (url.pathname === "/token") return token(req, res);
    const call = await beginCall({ faults, requests }, req, res, url, () => {
      const match = PATH.exec(url.pathname);
      if (match === null) return undefined;
      const [project, location, model] = match.slice(1, 4).map((s) => decodeURIComponent(s));
      return { project: project!, location: location!, model: model!, method: match[4]! };
    });
    if (call === undefined) return;
    const { project, location, model, method } = call.route;
    const resource = `projects/${project}/locations/${location}/publishers/google/models/${model}`;
    authorize(req, project, resource);
    const rules = VERTEX_MODELS[model];
    if (rules === undefined || rules.kind !== (method === "predict" ? "imagen" : "gemini")) {
      throw notFound(`Publisher Model \`${resource}\` not found.`);
    }
    sendGoogleJson(res, 200, service.answer(model, rules, call.body));
  }

  /** Bearer token issued here, unexpired, for a service account of `project`. */
  function authorize(req: http.IncomingMessage, project: string, resource: string): void {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (bearer === undefined) {
      throw new GoogleApiError(
        401,
        "UNAUTHENTICATED",
        `Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${AUTH_HELP}`,
        [
          errorInfo("CREDENTIALS_MISSING", "googleapis.com", {
            service: "aiplatform.googleapis.com",
          }),
        ],
      );
    }
    const issued = tokens.get(bearer);
    if (issued === undefined || issued.expiresAt <= now()) {
      if (issued !== undefined) tokens.delete(bearer);
      throw new GoogleApiError(
        401,
        "UNAUTHENTICATED",
        `Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${AUTH_HELP}`,
        [
          errorInfo(
            issued === undefined ? "ACCESS_TOKEN_TYPE_UNSUPPORTED" : "ACCESS_TOKEN_EXPIRED",
            "googleapis.com",
            { service: "aiplatform.googleapis.com" },
          ),
        ],
      );
    }
    if (issued.projectId !== project) {
      throw new GoogleApiError(
        403,
        "PERMISSION_DENIED",
        `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/${resource}' (or it may not exist).`,
        [
          errorInfo("IAM_PERMISSION_DENIED", "aiplatform.googleapis.com", {
            permission: "aiplatform.endpoints.predict",
            resource,
          }),
        ],
      );
    }
  }

  async function token(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = (await readBody(req)).toString("utf8");
    const form = new URLSearchParams(body);
    record(requests, {
      method: req.method ?? "GET",
      path: "/token",
      model: undefined,
      headers: req.headers,
      body: Object.fromEntries(form),
    });
    if (await playFault(tokenFaults, undefined, req, res)) return;
    const entry: TokenRequestRecord = { clientEmail: undefined, granted: false };
    tokenRequests.push(entry);
    try {
      if (req.method !== "POST")
        throw new OAuthError("invalid_request", "Method not allowed: use POST.");
      if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")) {
        throw new OAuthError(
          "invalid_request",
          "Bad Request: the body must be application/x-www-form-urlencoded.",
        );
      }
      const grantType = form.get("grant_type");
      if (grantType !== JWT_BEARER)
        throw new OAuthError("unsupported_grant_type", `Invalid grant_type: ${grantType ?? ""}`);
      const { email, account } = verifyAssertion(form.get("assertion") ?? "", entry);
      const accessToken = `ya29.emulator-${randomBytes(24).toString("base64url")}`;
      const lifetime = emulator.tokenLifetimeSeconds;
      tokens.set(accessToken, {
        clientEmail: email,
        projectId: account.projectId,
        expiresAt: now() + lifetime * 1000,
      });
      entry.granted = true;
      sendGoogleJson(res, 200, {
        access_token: accessToken,
        expires_in: lifetime,
        token_type: "Bearer",
      });
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      entry.error = `${e.error}: ${e.message}`;
      sendGoogleJson(res, 400, { error: e.error, error_description: e.message });
    }
  }

  /** Google's checks of a service-account assertion, in Google's words. */
  function verifyAssertion(
    assertion: string,
    entry: TokenRequestRecord,
  ): { email: string; account: Registered } {
    const parts = assertion.split(".");
    if (parts.length !== 3)
      throw new OAuthError("invalid_grant", "Invalid JWT: the assertion is not a compact JWS.");
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeSegment(headerPart);
    const claims = decodeSegment(payloadPart);
    if (header === undefined || claims === undefined)
      throw new OAuthError("invalid_grant", "Invalid JWT: the header or claims are not JSON.");
    if (header.alg !== "RS256")
      throw new OAuthError(
        "invalid_grant",
        `Invalid JWT: unsupported algorithm ${String(header.alg)}.`,
      );
    const email = typeof claims.iss === "string" ? claims.iss : "";
    entry.clientEmail = email || undefined;
    const account = accounts.get(email);
    if (account === undefined)
      throw new OAuthError("invalid_grant", "Invalid grant: account not found");
    const publicKey =
      typeof header.kid === "string" ? account.publicKeys.get(header.kid) : undefined;
    const signature = Buffer.from(signaturePart, "base64url");
    if (
      publicKey === undefined ||
      !verify("RSA-SHA256", Buffer.from(`${headerPart}.${payloadPart}`), publicKey, signature)
    ) {
      throw new OAuthError("invalid_grant", "Invalid JWT Signature.");
    }
    if (claims.aud !== account.tokenUri) {
      throw new OAuthError(
        "invalid_grant",
        `Invalid JWT: Failed audience check. The right audience is ${account.tokenUri}`,
      );
    }
    const nowSeconds = Math.floor(now() / 1000);
    const iat = claims.iat;
    const exp = claims.exp;
    if (
      typeof iat !== "number" ||
      typeof exp !== "number" ||
      exp <= iat ||
      exp - iat > MAX_ASSERTION_SECONDS ||
      exp <= nowSeconds ||
      iat > nowSeconds + CLOCK_SKEW_SECONDS
    ) {
      throw new OAuthError(
        "invalid_grant",
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
      );
    }
    const scopes = typeof claims.scope === "string" ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes(SCOPE))
      throw new OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    return { email, account };
  }

  const server = await listenGoogle(handle, opts);
  const tokenUri = `${server.origin}/token`;
  const serviceAccount = generateServiceAccountKey({ tokenUri, projectId });
  addServiceAccount(serviceAccount);

  return Object.assign(emulator, {
    baseUrl: `${server.origin}/v1`,
    tokenUri,
    port: server.port,
    projectId,
    serviceAccount,
    addServiceAccount,
    createServiceAccount(o: Omit<ServiceAccountKeyOptions, "tokenUri"> = {}) {
      const clientEmail = `sa-${randomBytes(4).toString("hex")}@${o.projectId ?? projectId}.iam.gserviceaccount.com`;
      const key = generateServiceAccountKey({ projectId, clientEmail, ...o, tokenUri });
      addServiceAccount(key);
      return key;
    },
    revokeTokens() {
      tokens.clear();
    },
    faults,
    tokenFaults,
    requests,
    tokenRequests,
    close: server.close,
  });
}

function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
