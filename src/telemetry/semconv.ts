/**
 * The OpenTelemetry semantic-convention names imagegate emits, from
 * `@opentelemetry/semantic-conventions`; imagegate's own names are `ATTR` in instruments.ts.
 *
 * Stable names come from the package's main entry (which the OTel SDK loads anyway). The
 * GenAI and older RPC names are only in its `incubating` entry, which is not bound by semver
 * and costs the gateway about 4 MB of heap and 10 MB of RSS when imported: as the package's
 * README advises, they are copied here, each typed as the package's own constant, so the
 * type check fails if the installed version spells one differently.
 */
import type * as incubating from "@opentelemetry/semantic-conventions/incubating";

export {
  ATTR_ERROR_TYPE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  METRIC_RPC_SERVER_CALL_DURATION,
  RPC_SYSTEM_NAME_VALUE_GRPC,
} from "@opentelemetry/semantic-conventions";

// GenAI (incubating).
export const ATTR_GEN_AI_OPERATION_NAME: typeof incubating.ATTR_GEN_AI_OPERATION_NAME =
  "gen_ai.operation.name";
export const ATTR_GEN_AI_OUTPUT_TYPE: typeof incubating.ATTR_GEN_AI_OUTPUT_TYPE =
  "gen_ai.output.type";
export const ATTR_GEN_AI_PROMPT: typeof incubating.ATTR_GEN_AI_PROMPT = "gen_ai.prompt";
export const ATTR_GEN_AI_PROVIDER_NAME: typeof incubating.ATTR_GEN_AI_PROVIDER_NAME =
  "gen_ai.provider.name";
export const ATTR_GEN_AI_REQUEST_CHOICE_COUNT: typeof incubating.ATTR_GEN_AI_REQUEST_CHOICE_COUNT =
  "gen_ai.request.choice.count";
export const ATTR_GEN_AI_REQUEST_MODEL: typeof incubating.ATTR_GEN_AI_REQUEST_MODEL =
  "gen_ai.request.model";
export const ATTR_GEN_AI_RESPONSE_MODEL: typeof incubating.ATTR_GEN_AI_RESPONSE_MODEL =
  "gen_ai.response.model";
export const ATTR_GEN_AI_TOKEN_TYPE: typeof incubating.ATTR_GEN_AI_TOKEN_TYPE = "gen_ai.token.type";
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS: typeof incubating.ATTR_GEN_AI_USAGE_INPUT_TOKENS =
  "gen_ai.usage.input_tokens";
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS: typeof incubating.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS =
  "gen_ai.usage.output_tokens";
export const GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT: typeof incubating.GEN_AI_OPERATION_NAME_VALUE_GENERATE_CONTENT =
  "generate_content";
export const GEN_AI_OUTPUT_TYPE_VALUE_IMAGE: typeof incubating.GEN_AI_OUTPUT_TYPE_VALUE_IMAGE =
  "image";
export const GEN_AI_TOKEN_TYPE_VALUE_INPUT: typeof incubating.GEN_AI_TOKEN_TYPE_VALUE_INPUT =
  "input";
export const GEN_AI_TOKEN_TYPE_VALUE_OUTPUT: typeof incubating.GEN_AI_TOKEN_TYPE_VALUE_OUTPUT =
  "output";
export const METRIC_GEN_AI_CLIENT_OPERATION_DURATION: typeof incubating.METRIC_GEN_AI_CLIENT_OPERATION_DURATION =
  "gen_ai.client.operation.duration";
export const METRIC_GEN_AI_CLIENT_TOKEN_USAGE: typeof incubating.METRIC_GEN_AI_CLIENT_TOKEN_USAGE =
  "gen_ai.client.token.usage";

// RPC (incubating): the protocol-specific codes, and the deprecated names many backends still read.
export const ATTR_RPC_CONNECT_RPC_ERROR_CODE: typeof incubating.ATTR_RPC_CONNECT_RPC_ERROR_CODE =
  "rpc.connect_rpc.error_code";
export const ATTR_RPC_GRPC_STATUS_CODE: typeof incubating.ATTR_RPC_GRPC_STATUS_CODE =
  "rpc.grpc.status_code";
export const ATTR_RPC_SERVICE: typeof incubating.ATTR_RPC_SERVICE = "rpc.service";
export const ATTR_RPC_SYSTEM: typeof incubating.ATTR_RPC_SYSTEM = "rpc.system";
export const RPC_SYSTEM_NAME_VALUE_CONNECTRPC: typeof incubating.RPC_SYSTEM_NAME_VALUE_CONNECTRPC =
  "connectrpc";
export const RPC_SYSTEM_VALUE_CONNECT_RPC: typeof incubating.RPC_SYSTEM_VALUE_CONNECT_RPC =
  "connect_rpc";
export const RPC_SYSTEM_VALUE_GRPC: typeof incubating.RPC_SYSTEM_VALUE_GRPC = "grpc";
