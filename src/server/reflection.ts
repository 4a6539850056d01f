/**
 * gRPC server reflection, `grpc.reflection.v1` and the older `grpc.reflection.v1alpha`
 * (which grpcurl, Postman and grpcui still try first), so a client needs no proto files:
 * https://github.com/grpc/grpc/blob/master/doc/server-reflection.md
 *
 * What it describes is read from the Connect router, not listed here: every service
 * registered on it (reflection included, as gRPC's own servers do), with the file
 * descriptors embedded in the generated code and their transitive imports. A service
 * registered later appears by itself. Open like the health check: descriptors hold no
 * secrets. Every answer carries its files' dependencies (the protocol allows leaving out
 * files already sent on the stream; sending them again keeps no state per stream and
 * never confuses a client).
 */
import {
  create,
  type DescFile,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1Alpha,
  ServerReflectionRequestSchema as RequestSchemaV1Alpha,
  ServerReflectionResponseSchema as ResponseSchemaV1Alpha,
} from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** Registers both versions; call it after the other services (later ones appear too). */
export function registerReflection(router: ConnectRouter): void {
  let index: DescriptorIndex | undefined;
  // Rebuilt only when a service was registered since: the router's list only grows.
  const current = () => {
    if (index?.handlers !== router.handlers.length)
      index = new DescriptorIndex(
        router.handlers.map((h) => h.service),
        router.handlers.length,
      );
    return index;
  };
  router.service(ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) yield current().answer(request);
    },
  });
  // v1alpha's messages are v1's, field for field: converted through the wire format.
  router.service(ServerReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        const v1 = fromBinary(
          ServerReflectionRequestSchema,
          toBinary(RequestSchemaV1Alpha, request),
        );
        const answer = current().answer(v1);
        yield fromBinary(ResponseSchemaV1Alpha, toBinary(ServerReflectionResponseSchema, answer));
      }
    },
  });
}

type Answer = NonNullable<
  MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"]
>;

/** The served services' files and the symbols they declare, by name. */
class DescriptorIndex {
  readonly handlers: number;
  readonly #services: string[];
  readonly #files = new Map<string, DescFile>();
  readonly #symbols = new Map<string, DescFile>();
  /** `extendee:number` → the file declaring that extension. */
  readonly #extensions = new Map<string, DescFile>();
  readonly #encoded = new Map<DescFile, Uint8Array>();

  constructor(services: readonly DescService[], handlers: number) {
    this.handlers = handlers;
    this.#services = [...new Set(services.map((s) => s.typeName))];
    for (const service of services) this.#addFile(service.file);
  }

  answer(request: ServerReflectionRequest): ServerReflectionResponse {
    return create(ServerReflectionResponseSchema, {
      validHost: request.host,
      originalRequest: request,
      messageResponse: this.#respond(request.messageRequest),
    });
  }

  #respond(query: ServerReflectionRequest["messageRequest"]): Answer {
    switch (query.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.#services.map((name) => ({ name })) },
        };
      case "fileByFilename":
        return this.#withFile(this.#files.get(query.value), `file not found: ${query.value}`);
      case "fileContainingSymbol":
        return this.#withFile(this.#symbols.get(query.value), `symbol not found: ${query.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = query.value;
        return this.#withFile(
          this.#extensions.get(`${containingType}:${extensionNumber}`),
          `extension not found: ${containingType} ${extensionNumber}`,
        );
      }
      case "allExtensionNumbersOfType": {
        const type = query.value;
        if (!this.#isMessage(type)) return error(Code.NotFound, `type not found: ${type}`);
        const numbers = [...this.#extensions.keys()]
          .filter((k) => k.slice(0, k.lastIndexOf(":")) === type)
          .map((k) => Number(k.slice(k.lastIndexOf(":") + 1)));
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: type, extensionNumber: numbers },
        };
      }
      default:
        return error(Code.InvalidArgument, "the request names no reflection query");
    }
  }

  /** The file first, then every file it imports, directly or not. */
  #withFile(file: DescFile | undefined, notFound: string): Answer {
    if (file === undefined) return error(Code.NotFound, notFound);
    const files = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (files.has(f)) return;
      files.add(f);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(file);
    return {
      case: "fileDescriptorResponse",
      value: { fileDescriptorProto: [...files].map((f) => this.#encode(f)) },
    };
  }

  #encode(file: DescFile): Uint8Array {
    let bytes = this.#encoded.get(file);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.#encoded.set(file, bytes);
    }
    return bytes;
  }

  #isMessage(typeName: string): boolean {
    const file = this.#symbols.get(typeName);
    return file !== undefined && findMessage(file, typeName) !== undefined;
  }

  #addFile(file: DescFile): void {
    if (this.#files.has(file.proto.name)) return;
    this.#files.set(file.proto.name, file);
    const symbol = (name: string) => this.#symbols.set(name, file);
    for (const service of file.services) {
      symbol(service.typeName);
      for (const method of service.methods) symbol(`${service.typeName}.${method.name}`);
    }
    const addMessage = (message: DescMessage) => {
      symbol(message.typeName);
      for (const field of message.fields) symbol(`${message.typeName}.${field.name}`);
      for (const oneof of message.oneofs) symbol(`${message.typeName}.${oneof.name}`);
      for (const nested of message.nestedMessages) addMessage(nested);
      for (const e of message.nestedEnums) symbol(e.typeName);
      for (const ext of message.nestedExtensions) {
        symbol(ext.typeName);
        this.#extensions.set(`${ext.extendee.typeName}:${ext.number}`, file);
      }
    };
    for (const message of file.messages) addMessage(message);
    for (const e of file.enums) symbol(e.typeName);
    for (const ext of file.extensions) {
      symbol(ext.typeName);
      this.#extensions.set(`${ext.extendee.typeName}:${ext.number}`, file);
    }
    for (const dep of file.dependencies) this.#addFile(dep);
  }
}

function findMessage(file: DescFile, typeName: string): DescMessage | undefined {
  const search = (messages: readonly DescMessage[]): DescMessage | undefined => {
    for (const m of messages) {
      if (m.typeName === typeName) return m;
      const found = search(m.nestedMessages);
      if (found) return found;
    }
    return undefined;
  };
  return search(file.messages);
}

/** The protocol's error answer: the stream goes on. */
function error(code: Code, message: string): Answer {
  return { case: "errorResponse", value: { errorCode: code, errorMessage: message } };
}
