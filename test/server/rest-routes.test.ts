/**
 * The REST table comes from the `google.api.http` annotations, not from code: a new
 * annotated rpc becomes a route without touching the transcoder.
 */
import { clone, create, createFileRegistry, setExtension } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  MethodDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { createServiceImplSpec } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { file_google_api_annotations, http } from "../../src/gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../../src/gen/google/api/http_pb.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import { file_imagegate_v1_images, ImageService } from "../../src/gen/imagegate/v1/images_pb.js";
import { restRoutesFrom } from "../../src/server/rest.ts";

describe("REST routes from annotations", () => {
  it("exposes exactly the annotated methods of the served services", () => {
    const routes = restRoutesFrom([
      createServiceImplSpec(ImageService, {}),
      createServiceImplSpec(Health, {}),
    ]);
    expect([...routes.keys()]).toEqual(["POST /v1/images/generations"]);
    expect(routes.get("POST /v1/images/generations")?.method).toBe(ImageService.method.createImage);
  });

  it("turns a newly annotated rpc into a route", () => {
    // images.proto with one more rpc, annotated `post: "/v1/images/variations"`.
    const fdp = clone(FileDescriptorProtoSchema, file_imagegate_v1_images.proto);
    const service = fdp.service[0]!;
    const method = clone(MethodDescriptorProtoSchema, service.method[0]!);
    method.name = "CreateVariation";
    const options = create(MethodOptionsSchema);
    setExtension(
      options,
      http,
      create(HttpRuleSchema, {
        pattern: { case: "post", value: "/v1/images/variations" },
        body: "*",
      }),
    );
    method.options = options;
    service.method.push(method);
    const registry = createFileRegistry(fdp, (name) =>
      name === "google/api/annotations.proto" ? file_google_api_annotations : undefined,
    );
    const extended = registry.getService("imagegate.v1.ImageService")!;

    const routes = restRoutesFrom([createServiceImplSpec(extended, {})]);
    expect([...routes.keys()].sort()).toEqual([
      "POST /v1/images/generations",
      "POST /v1/images/variations",
    ]);
  });

  it("refuses at startup a pattern it cannot serve", () => {
    const fdp = clone(FileDescriptorProtoSchema, file_imagegate_v1_images.proto);
    const options = create(MethodOptionsSchema);
    setExtension(
      options,
      http,
      create(HttpRuleSchema, { pattern: { case: "post", value: "/v1/images/{id}" }, body: "*" }),
    );
    fdp.service[0]!.method[0]!.options = options;
    const registry = createFileRegistry(fdp, (name) =>
      name === "google/api/annotations.proto" ? file_google_api_annotations : undefined,
    );
    const service = registry.getService("imagegate.v1.ImageService")!;
    expect(() => restRoutesFrom([createServiceImplSpec(service, {})])).toThrow(
      /path templates are not supported/,
    );
  });
});
