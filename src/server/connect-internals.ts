/**
 * The one door to connect-es's internals. Its subpath exports (`@connectrpc/connect/protocol`,
 * `/protocol-connect`, `/protocol-grpc`, `/protocol-grpc-web`) are marked "Internal code, does not follow semantic
 * versioning": any release may change them. Written against @connectrpc/connect 2.2.0
 * (pinned exactly in package.json); when upgrading, this file lists everything to re-check.
 * No other file imports those paths (test/architecture/connect-internals.test.ts).
 */

// A Node request handed to connect-es's handlers, and their answer (gateway.ts,
// universal.ts, rpc-fixups.ts): connect-node's own conversion aborts the call's signal on
// every close, which universal.ts avoids.
export type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
// REST as a fourth protocol (rest.ts): the same implementation through the same
// interceptors, as connect-es's own handlers call it, and an error's metadata as headers.
export { invokeUnaryImplementation, mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
// REST's server streams (rest-stream.ts): a server-streaming implementation invoked through
// the interceptors as connect-es's handlers do, on a one-message request.
export {
  createAsyncIterable,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
// Correcting connect-es's answers on their way out (rpc-fixups.ts): a Connect error body
// read and rewritten, a gRPC status read from and written to trailers.
export { errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
export { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
// gRPC-Web's trailers, the body's last frame (rpc-fixups.ts rewrites them; rpc-not-found.ts
// writes them), and a Connect streaming call's end-stream message (rpc-not-found.ts).
export {
  trailerFlag,
  trailerParse,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
export { endStreamFlag, endStreamToJson } from "@connectrpc/connect/protocol-connect";
