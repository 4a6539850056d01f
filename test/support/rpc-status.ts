/**
 * Decodes the `grpc-status-details-bin` trailer: a binary `google.rpc.Status`
 * { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3 }
 * whose details may hold a `google.rpc.ErrorInfo`. Hand-decoded with the wire reader, so
 * the tests do not depend on the gateway's own (Connect) encoding of it.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type * as grpc from "@grpc/grpc-js";
import { type ErrorInfo, ErrorInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";

export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

export interface RpcStatus {
  code: number;
  message: string;
  details: AnyMessage[];
}

export function decodeRpcStatus(bytes: Uint8Array): RpcStatus {
  const reader = new BinaryReader(bytes);
  const status: RpcStatus = { code: 0, message: "", details: [] };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) status.code = reader.int32();
    else if (field === 2 && wireType === WireType.LengthDelimited) status.message = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited)
      status.details.push(decodeAny(reader.bytes()));
    else reader.skip(wireType);
  }
  return status;
}

function decodeAny(bytes: Uint8Array): AnyMessage {
  const reader = new BinaryReader(bytes);
  const any: AnyMessage = { typeUrl: "", value: new Uint8Array() };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) any.typeUrl = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) any.value = reader.bytes();
    else reader.skip(wireType);
  }
  return any;
}

/** The `google.rpc.ErrorInfo` among a Status's details, if any. */
export function errorInfoOf(status: RpcStatus): ErrorInfo | undefined {
  const any = status.details.find((d) => d.typeUrl.endsWith("/google.rpc.ErrorInfo"));
  return any === undefined ? undefined : fromBinary(ErrorInfoSchema, any.value);
}

/** The Status in a grpc-js error's trailers, or undefined when the server sent none. */
export function grpcStatusDetails(err: grpc.ServiceError): RpcStatus | undefined {
  const bin = err.metadata?.get("grpc-status-details-bin")[0];
  if (bin === undefined) return undefined;
  return decodeRpcStatus(typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
}
