/**
 * Loopback stand-ins of the AWS identity endpoints the SDK's credential providers call:
 * ECS container credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, with its authorization
 * token) and STS (`AWS_ENDPOINT_URL_STS`): AssumeRole, whose SigV4 signature is checked
 * against the base credentials, and AssumeRoleWithWebIdentity, whose token must be the
 * token file's. Each issues the next credential of a pool made up front, so the Bedrock
 * emulator can be told exactly which credentials the sources will issue.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type AwsCredential, verifySigV4 } from "@imagegate/emulators/sigv4";

export type Issued = Required<AwsCredential>;

/** `count` temporary credentials with recognisable key ids (`ASIA<prefix>000001…`). */
export function credentialPool(prefix: string, count: number): Issued[] {
  return Array.from({ length: count }, (_, i) => ({
    accessKeyId: `ASIA${prefix.toUpperCase()}${String(i + 1).padStart(16 - prefix.length, "0")}`,
    secretAccessKey: randomBytes(30).toString("base64"),
    sessionToken: `token-${prefix}-${i + 1}-${randomBytes(24).toString("hex")}`,
  }));
}

export interface IdentityStandIn {
  /** e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** What each endpoint was asked, in order: `ecs`, `AssumeRole <arn>`, `AssumeRoleWithWebIdentity <arn>`. */
  readonly calls: string[];
  /** Credentials issued, in order. */
  readonly issued: Issued[];
  /** Lifetime of what is issued from now on (ms). */
  lifetimeMs: number;
  close(): Promise<void>;
}

export interface IdentityOptions {
  pool: Issued[];
  /** The ECS endpoint's authorization token (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  ecsToken?: string;
  /** Base credentials STS accepts AssumeRole calls signed with, and the region it signs in. */
  stsCallers?: readonly AwsCredential[];
  stsRegion?: string;
  /** The web identity token AssumeRoleWithWebIdentity accepts. */
  webIdentityToken?: string;
  /** Role ARNs STS refuses (AccessDenied). */
  deniedRoles?: readonly string[];
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function stsError(code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`;
}

export async function startIdentityStandIn(options: IdentityOptions): Promise<IdentityStandIn> {
  const calls: string[] = [];
  const issued: Issued[] = [];
  const state = { lifetimeMs: 60 * 60 * 1000 };
  const next = (): { credential: Issued; expiration: string } => {
    const credential = options.pool[issued.length];
    if (credential === undefined) throw new Error("the credential pool is used up");
    issued.push(credential);
    return { credential, expiration: new Date(Date.now() + state.lifetimeMs).toISOString() };
  };
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req);
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/ecs/credentials") {
      calls.push("ecs");
      if (options.ecsToken !== undefined && req.headers.authorization !== options.ecsToken) {
        res.writeHead(403, { "content-type": "application/json" }).end('{"message":"denied"}');
        return;
      }
      const { credential, expiration } = next();
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          AccessKeyId: credential.accessKeyId,
          SecretAccessKey: credential.secretAccessKey,
          Token: credential.sessionToken,
          Expiration: expiration,
        }),
      );
      return;
    }
    if (req.method === "POST" && path === "/") {
      const form = new URLSearchParams(body.toString("utf8"));
      const action = form.get("Action") ?? "";
      const role = form.get("RoleArn") ?? "";
      calls.push(`${action} ${role}`);
      const xml = (status: number, text: string) =>
        res.writeHead(status, { "content-type": "text/xml" }).end(text);
      if (action === "AssumeRole") {
        const verdict = verifySigV4(
          { method: "POST", target: req.url ?? "/", headers: req.headers, body },
          {
            service: "sts",
            region: options.stsRegion ?? "us-east-1",
            now: Date.now(),
            credential: (id) => options.stsCallers?.find((c) => c.accessKeyId === id),
          },
        );
        if (!verdict.ok) return xml(verdict.status, stsError(verdict.errorType, verdict.message));
      } else if (action === "AssumeRoleWithWebIdentity") {
        if (form.get("WebIdentityToken") !== options.webIdentityToken)
          return xml(400, stsError("InvalidIdentityToken", "The web identity token is invalid"));
      } else {
        return xml(400, stsError("InvalidAction", `unknown action ${action}`));
      }
      if (options.deniedRoles?.includes(role)) {
        return xml(
          403,
          stsError(
            "AccessDenied",
            `User is not authorized to perform: sts:${action} on resource: ${role}`,
          ),
        );
      }
      const { credential, expiration } = next();
      return xml(
        200,
        `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result><Credentials><AccessKeyId>${credential.accessKeyId}</AccessKeyId><SecretAccessKey>${credential.secretAccessKey}</SecretAccessKey><SessionToken>${credential.sessionToken}</SessionToken><Expiration>${expiration}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:${form.get("RoleSessionName")}</AssumedRoleId><Arn>${role}/${form.get("RoleSessionName")}</Arn></AssumedRoleUser></${action}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata></${action}Response>`,
      );
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    issued,
    get lifetimeMs() {
      return state.lifetimeMs;
    },
    set lifetimeMs(ms: number) {
      state.lifetimeMs = ms;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
