/**
 * Typed grpc-js clients built from protobuf-es descriptors (no proto-loader): each method
 * gets its path and binary (de)serializers from the generated DescService.
 */
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  for (const method of service.methods) {
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream:
        method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream:
        method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (msg: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.input, create(method.input, msg))),
      requestDeserialize: (buf: Buffer) => fromBinary(method.input, buf),
      responseSerialize: (msg: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.output, msg)),
      responseDeserialize: (buf: Buffer) => fromBinary(method.output, buf),
    };
  }
  return def;
}

export interface GrpcResult<T> {
  response: T;
  headers: grpc.Metadata;
}

/** A grpc-js client over h2c (insecure credentials), with a promise-returning unary call. */
export function grpcClient(
  service: DescService,
  address: string,
  credentials = grpc.credentials.createInsecure(),
) {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  const client = new Ctor(address, credentials) as grpc.Client &
    Record<string, grpc.handleUnaryCall<unknown, unknown> | unknown>;
  return {
    client,
    unary<I extends DescMessage, O extends DescMessage>(
      methodLocalName: string,
      request: Partial<MessageShape<I>>,
      metadata = new grpc.Metadata(),
      options: grpc.CallOptions = {},
    ): Promise<GrpcResult<MessageShape<O>>> {
      return new Promise((resolve, reject) => {
        let headers = new grpc.Metadata();
        const fn = client[methodLocalName] as (
          req: unknown,
          md: grpc.Metadata,
          opts: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res: MessageShape<O>) => void,
        ) => grpc.ClientUnaryCall;
        const call = fn.call(client, request, metadata, options, (err, res) => {
          if (err) reject(err);
          else resolve({ response: res, headers });
        });
        call.on("metadata", (md: grpc.Metadata) => {
          headers = md;
        });
      });
    },
    close() {
      client.close();
    },
  };
}
