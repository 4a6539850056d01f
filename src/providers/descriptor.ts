/**
 * Everything the gateway knows about one provider outside its adapter, as data: one
 * descriptor per provider folder (`<name>/descriptor.ts`), listed once in index.ts. The
 * environment table, the credential check, the download guard's hosts and the telemetry
 * names are built from these, so adding a provider touches its folder and that list.
 */
import type { Provider } from "../catalog/providers.ts";
import type { ParamKey } from "./params.ts";
import type { AdapterDeployment, ProviderAdapter } from "./types.ts";

export interface ProviderDescriptor<P extends Provider = Provider> {
  /** The prefix of direct model names (`bedrock/…`) and the key of its catalog file. */
  readonly name: P;
  /**
   * Where each param comes from when a deployment leaves it out (contract: "Environment, for
   * direct provider/model names"), read in order: the first variable that is set wins.
   */
  readonly env: Readonly<Partial<Record<ParamKey, readonly string[]>>>;
  /**
   * Params that make up one credential (a key pair and its session token): when a deployment
   * sets any of `keys`, the environment fills none of them, so a credential is never half the
   * deployment's and half the environment's; and then all of `needs` must be set. A param of
   * `instead` names another source of the credential: set, the environment fills none of `keys`.
   */
  readonly units?: readonly CredentialUnit[];
  /** The credentials it needs, as alternatives: any one group fully set is enough. */
  readonly requires: readonly (readonly ParamKey[])[];
  /**
   * The hosts it serves image URLs from: the only places the gateway downloads its URLs from
   * (HTTPS, port 443), besides `general_settings.allowed_image_hosts`. None for providers
   * that answer only with bytes.
   */
  readonly imageHosts: readonly string[];
  /** OpenTelemetry's `gen_ai.provider.name` for its calls (GenAI semconv; Recraft has no registered one). */
  readonly telemetryName: string;
  readonly adapter: ProviderAdapter;
  /**
   * For credentials the provider finds itself (a default chain, a metadata server): tries a
   * deployment's once at startup and says what failed, naming the deployment and the sources
   * tried; undefined when they resolve. Never throws.
   */
  readonly probeCredentials?: (deployment: AdapterDeployment) => Promise<string | undefined>;
}

export interface CredentialUnit {
  readonly keys: readonly ParamKey[];
  readonly needs: readonly ParamKey[];
  readonly instead?: readonly ParamKey[];
}
