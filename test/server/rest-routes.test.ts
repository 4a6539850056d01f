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
import {
  CreateImageRequestSchema,
  file_imagegate_v1_images,
  GetModelRequestSchema,
  ImageService,
} from "../../src/gen/imagegate/v1/images_pb.js";
import { DebugInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { GatewayError } from "../../src/errors/errors.ts";
import { restRoutesFrom, routeKey } from "../../src/server/rest.ts";
import { matchTemplate, parseTemplate, requestJson } from "../../src/server/rest-path.ts";

describe("REST routes from annotations", () => {
  it("exposes exactly the annotated methods of the served services", () => {
    const routes = restRoutesFrom([
      createServiceImplSpec(ImageService, {}),
      createServiceImplSpec(Health, {}),
    ]);
    expect(routes.all().map((r) => routeKey(r.verb, r.path))).toEqual([
      "POST /v1/images/generations",
      "POST /v1/images/edits",
      "POST /v1/images/variations",
      "GET /v1/models",
      "GET /v1/models/{id=**}",
    ]);
    expect(routes.match("POST", "/v1/images/generations")?.method).toBe(
      ImageService.method.createImage,
    );
    expect(routes.match("GET", "/v1/models")?.method).toBe(ImageService.method.listModels);
    const byId = routes.match("GET", "/v1/models/openai/dall-e-3");
    expect(byId?.method).toBe(ImageService.method.getModel);
    expect(byId?.variables).toEqual(new Map([["id", "openai/dall-e-3"]]));
    expect(routes.match("GET", "/v1/images/generations")).toBeUndefined();
    expect(routes.match("POST", "/v1/models")).toBeUndefined();
  });

  it("turns a newly annotated rpc into a route", () => {
    // images.proto with one more rpc, annotated `post: "/v1/images/upscale"`.
    const fdp = clone(FileDescriptorProtoSchema, file_imagegate_v1_images.proto);
    const service = fdp.service[0]!;
    const method = clone(MethodDescriptorProtoSchema, service.method[0]!);
    method.name = "CreateVariation";
    const options = create(MethodOptionsSchema);
    setExtension(
      options,
      http,
      create(HttpRuleSchema, {
        pattern: { case: "post", value: "/v1/images/upscale" },
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
    expect(routes.all().map((r) => routeKey(r.verb, r.path))).toContain("POST /v1/images/upscale");
  });

  it.each([
    ["/v1/images/{id}", "*", /id is not a scalar field of imagegate.v1.CreateImageRequest/],
    ["/v1/images/{prompt=**}/x", "*", /must be the last segment/],
    ["/v1/images/{prompt=shelves/*}", "*", /unsupported path template segment/],
    ["/v1/images:generate", "*", /unsupported path template/],
    ["/v1/images", "prompt", /only body "\*" or none/],
  ])("refuses at startup a pattern it cannot serve: %s body %s", (path, body, error) => {
    const fdp = clone(FileDescriptorProtoSchema, file_imagegate_v1_images.proto);
    const options = create(MethodOptionsSchema);
    setExtension(
      options,
      http,
      create(HttpRuleSchema, { pattern: { case: "post", value: path }, body }),
    );
    fdp.service[0]!.method[0]!.options = options;
    const registry = createFileRegistry(fdp, (name) =>
      name === "google/api/annotations.proto" ? file_google_api_annotations : undefined,
    );
    const service = registry.getService("imagegate.v1.ImageService")!;
    expect(() => restRoutesFrom([createServiceImplSpec(service, {})])).toThrow(error);
  });
});

describe("path templates", () => {
  const rest = parseTemplate("/v1/models/{id=**}", GetModelRequestSchema);
  const one = parseTemplate("/v1/{id}/info", GetModelRequestSchema);

  it.each([
    ["/v1/models/image-hq", "image-hq"],
    ["/v1/models/openai/dall-e-3", "openai/dall-e-3"],
    ["/v1/models/openai%2Fdall-e-3", "openai/dall-e-3"],
    ["/v1/models/a%20b", "a b"],
  ])("{id=**} matches %s as %s", (path, id) => {
    expect(matchTemplate(rest, path)).toEqual(new Map([["id", id]]));
  });

  it.each(["/v1/models", "/v1/models/", "/v1/model/x", "/v1/models/%E0%A4%A"])(
    "{id=**} does not match %s",
    (path) => {
      expect(matchTemplate(rest, path)).toBeUndefined();
    },
  );

  it("{id} is one segment, between literals", () => {
    expect(matchTemplate(one, "/v1/k1/info")).toEqual(new Map([["id", "k1"]]));
    expect(matchTemplate(one, "/v1/k1/k2/info")).toBeUndefined();
    expect(matchTemplate(one, "/v1/k1/info/more")).toBeUndefined();
  });
});

describe("query parameters and path variables as the request's JSON", () => {
  const query = (q: string) => new URLSearchParams(q);

  it("types each value by its field: strings, integers, booleans", () => {
    expect(
      requestJson(CreateImageRequestSchema, {}, undefined, query("prompt=a+cat&n=2&stream=true")),
    ).toEqual({ prompt: "a cat", n: 2, stream: true });
  });

  it("repeats a repeated field, and reaches into nested messages by dotted names", () => {
    expect(
      requestJson(DebugInfoSchema, {}, undefined, query("stack_entries=a&stackEntries=b&detail=d")),
    ).toEqual({ stack_entries: ["a"], stackEntries: ["b"], detail: "d" });
    expect(requestJson(HttpRuleSchema, {}, undefined, query("custom.kind=HEAD"))).toEqual({
      custom: { kind: "HEAD" },
    });
  });

  it("path variables win over the body's field of the same name", () => {
    expect(
      requestJson(GetModelRequestSchema, { id: "body" }, new Map([["id", "path"]]), undefined),
    ).toEqual({ id: "path" });
  });

  it.each([
    ["limit=1", "limit", /Unrecognized request argument supplied: limit/],
    ["n=two", "n", /expected a number, but got 'two'/],
    ["stream=yes", "stream", /expected true or false/],
    ["prompt=a&prompt=b", "prompt", /may be given only once/],
    ["__proto__=x", "__proto__", /Unrecognized request argument/],
  ])("?%s is a 400 naming %s", (q, param, message) => {
    let thrown: unknown;
    try {
      requestJson(CreateImageRequestSchema, {}, undefined, query(q));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect((thrown as GatewayError).kind).toBe("invalid_request");
    expect((thrown as GatewayError).param).toBe(param);
    expect((thrown as GatewayError).message).toMatch(message);
  });
});
