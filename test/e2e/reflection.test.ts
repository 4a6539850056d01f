/**
 * gRPC server reflection (v1 and v1alpha) on the gateway's port, with keys configured (it
 * is open like the health check): grpc-js speaking the protocol over one stream, Connect
 * over HTTP/2, and `buf curl`, a third-party client, listing methods and calling one from
 * the descriptors alone.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { type DescService, createFileRegistry, fromBinary, getOption } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http } from "../../src/gen/google/api/annotations_pb.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1Alpha } from "../../src/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { registerReflection } from "../../src/server/reflection.ts";
import { grpcServiceDefinition } from "../support/grpc.ts";
import { startStack, type Stack } from "../support/stack.ts";

const MASTER_KEY = "sk-master-reflection-test-5b1e";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    yaml: "general_settings:\n  master_key: os.environ/IMAGEGATE_MASTER_KEY\n",
    env: { IMAGEGATE_MASTER_KEY: MASTER_KEY },
  });
});
afterAll(async () => {
  await stack?.close();
});

type Query = Partial<Pick<ServerReflectionRequest, "host" | "messageRequest">>;

/** One grpc-js reflection stream: each question is answered before the next is sent. */
function grpcReflection(service: DescService) {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  const client = new Ctor(`127.0.0.1:${stack.gateway.port}`, grpc.credentials.createInsecure());
  const call = (
    client as unknown as Record<string, () => grpc.ClientDuplexStream<Query, never>>
  ).serverReflectionInfo!.call(client);
  const waiting: ((r: ServerReflectionResponse) => void)[] = [];
  const failed = new Promise<never>((_, reject) => call.on("error", reject));
  call.on("data", (r: ServerReflectionResponse) => waiting.shift()?.(r));
  return {
    ask(query: Query): Promise<ServerReflectionResponse> {
      const answer = new Promise<ServerReflectionResponse>((resolve) => waiting.push(resolve));
      call.write(query);
      return Promise.race([answer, failed]);
    },
    close() {
      call.end();
      client.close();
    },
  };
}

const LIST: Query = { messageRequest: { case: "listServices", value: "" } };

function servicesOf(r: ServerReflectionResponse): string[] {
  expect(r.messageResponse.case).toBe("listServicesResponse");
  return r.messageResponse.case === "listServicesResponse"
    ? r.messageResponse.value.service.map((s) => s.name)
    : [];
}

function filesOf(r: ServerReflectionResponse): FileDescriptorProto[] {
  expect(r.messageResponse.case).toBe("fileDescriptorResponse");
  return r.messageResponse.case === "fileDescriptorResponse"
    ? r.messageResponse.value.fileDescriptorProto.map((b) =>
        fromBinary(FileDescriptorProtoSchema, b),
      )
    : [];
}

const SERVED = [
  "imagegate.v1.ImageService",
  "imagegate.admin.v1.AdminService",
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

describe.each([
  ["v1", ServerReflection],
  ["v1alpha", ServerReflectionV1Alpha],
])("grpc.reflection.%s over grpc-js, no key", (_, service) => {
  it("lists every served service, then describes ImageService on the same stream", async () => {
    const stream = grpcReflection(service);
    try {
      expect((await stream.ask(LIST)).messageResponse.case).toBe("listServicesResponse");
      expect(servicesOf(await stream.ask(LIST)).sort()).toEqual([...SERVED].sort());

      const answer = await stream.ask({
        host: "gateway",
        messageRequest: { case: "fileContainingSymbol", value: "imagegate.v1.ImageService" },
      });
      expect(answer.validHost).toBe("gateway");
      expect(answer.originalRequest?.messageRequest.value).toBe("imagegate.v1.ImageService");
      const files = filesOf(answer);
      expect(files[0]!.name).toBe("imagegate/v1/images.proto");
      expect(files.map((f) => f.name).sort()).toEqual([
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/descriptor.proto",
        "imagegate/v1/images.proto",
      ]);
      // The files are complete: a registry built from them alone (imports first) knows the
      // method and its route.
      const registry = createFileRegistry(
        create(FileDescriptorSetSchema, { file: [...files].reverse() }),
      );
      const imageService = registry.getService("imagegate.v1.ImageService")!;
      const createImage = imageService.methods.find((m) => m.name === "CreateImage")!;
      expect(createImage.input.typeName).toBe("imagegate.v1.CreateImageRequest");
      const rule = getOption(createImage, http);
      expect(rule.pattern).toEqual({ case: "post", value: "/v1/images/generations" });
    } finally {
      stream.close();
    }
  });

  it("finds files by name and by nested symbol; unknown ones get the error answer, and the stream goes on", async () => {
    const stream = grpcReflection(service);
    try {
      const health = filesOf(
        await stream.ask({
          messageRequest: { case: "fileByFilename", value: "grpc/health/v1/health.proto" },
        }),
      );
      expect(health.map((f) => f.name)).toEqual(["grpc/health/v1/health.proto"]);
      expect(health[0]!.service[0]!.name).toBe("Health");

      for (const symbol of [
        "imagegate.v1.ImageService.CreateImage",
        "imagegate.v1.ImagesResponse",
        "imagegate.v1.CreateImageRequest.prompt",
      ]) {
        const files = filesOf(
          await stream.ask({ messageRequest: { case: "fileContainingSymbol", value: symbol } }),
        );
        expect(files[0]!.name).toBe("imagegate/v1/images.proto");
      }

      for (const messageRequest of [
        { case: "fileContainingSymbol", value: "imagegate.v1.NoSuchThing" },
        { case: "fileByFilename", value: "no/such/file.proto" },
      ] as const) {
        const answer = await stream.ask({ messageRequest });
        expect(answer.messageResponse.case).toBe("errorResponse");
        if (answer.messageResponse.case === "errorResponse") {
          expect(answer.messageResponse.value.errorCode).toBe(grpc.status.NOT_FOUND);
          expect(answer.messageResponse.value.errorMessage).toContain(messageRequest.value);
        }
      }
      // After the errors, the same stream still answers.
      expect(servicesOf(await stream.ask(LIST))).toContain("imagegate.v1.ImageService");
    } finally {
      stream.close();
    }
  });

  it("answers extension queries for google.api.http", async () => {
    const stream = grpcReflection(service);
    try {
      const files = filesOf(
        await stream.ask({
          messageRequest: {
            case: "fileContainingExtension",
            value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
          },
        } as Query),
      );
      expect(files[0]!.name).toBe("google/api/annotations.proto");
      const numbers = await stream.ask({
        messageRequest: {
          case: "allExtensionNumbersOfType",
          value: "google.protobuf.MethodOptions",
        },
      });
      expect(numbers.messageResponse.case).toBe("allExtensionNumbersResponse");
      if (numbers.messageResponse.case === "allExtensionNumbersResponse")
        expect(numbers.messageResponse.value.extensionNumber).toEqual([72295728]);
    } finally {
      stream.close();
    }
  });
});

describe("reflection over Connect", () => {
  it("lists the services over HTTP/2 (bidi streaming)", async () => {
    const client = createClient(
      ServerReflection,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "2" }),
    );
    const seen: string[] = [];
    for await (const answer of client.serverReflectionInfo(
      (async function* () {
        yield create(ServerReflectionRequestSchema, LIST);
      })(),
    )) {
      seen.push(...servicesOf(answer));
    }
    expect(seen.sort()).toEqual([...SERVED].sort());
  });
});

describe("the list follows what is registered", () => {
  it("a service registered after reflection is listed and described", async () => {
    const transport = createRouterTransport((router) => {
      router.service(ImageService, {});
      registerReflection(router);
      // Stands for a service added later (the admin service): nothing names it in reflection.
      router.service(Health, {});
    });
    const client = createClient(ServerReflection, transport);
    const answers: ServerReflectionResponse[] = [];
    for await (const answer of client.serverReflectionInfo(
      (async function* () {
        yield create(ServerReflectionRequestSchema, LIST);
        yield create(ServerReflectionRequestSchema, {
          messageRequest: { case: "fileContainingSymbol", value: "grpc.health.v1.Health" },
        });
      })(),
    )) {
      answers.push(answer);
    }
    expect(servicesOf(answers[0]!)).toContain("grpc.health.v1.Health");
    expect(filesOf(answers[1]!)[0]!.name).toBe("grpc/health/v1/health.proto");
  });
});

describe("the API itself still needs a key", () => {
  it("ImageService without a key is UNAUTHENTICATED while reflection answered", async () => {
    const client = createClient(
      ImageService,
      createConnectTransport({ baseUrl: stack.url, httpVersion: "2" }),
    );
    await expect(client.createImage({ prompt: "x" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
  });
});

const BUF = "node_modules/.bin/buf";

describe.skipIf(!existsSync(BUF))("buf curl, a client with no proto files", () => {
  const run = promisify(execFile);
  const bufCurl = (...args: string[]) =>
    run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
      timeout: 30_000,
    });

  it.each(["grpc-v1", "grpc-v1alpha"])("--list-methods with --reflect-protocol %s", async (p) => {
    const { stdout } = await bufCurl("--list-methods", "--reflect-protocol", p, stack.url);
    const methods = stdout.trim().split("\n").sort();
    expect(methods).toEqual(
      expect.arrayContaining([
        "imagegate.v1.ImageService/CreateImage",
        "imagegate.v1.ImageService/ListModels",
        "imagegate.v1.ImageService/GetModel",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  it("calls a method from the schema reflection gave it", async () => {
    const { stdout } = await bufCurl(
      "-d",
      '{"service": "imagegate.v1.ImageService"}',
      `${stack.url}/grpc.health.v1.Health/Check`,
    );
    expect(JSON.parse(stdout)).toEqual({ status: "SERVING" });
  });
});
