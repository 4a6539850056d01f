/**
 * The OpenAI edit mapping (providers/openai/edit.ts) and the multipart encoder, read back
 * with the platform's own form parser: dall-e-2 sends one `image`, GPT-image models one
 * `image[]` per image in order, the mask as `mask`; only fields the client set are sent,
 * and response_format only to dall-e-2.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { EditInput, InputImageData } from "../../src/catalog/edit-rules.ts";
import { CreateImageRequestSchema } from "../../src/gen/imagegate/v1/images_pb.js";
import { openAIEditPath, toOpenAIEditForm } from "../../src/providers/openai/edit.ts";
import { encodeMultipart } from "../../src/providers/multipart.ts";

function image(byte: number, format: InputImageData["format"] = "png"): InputImageData {
  return {
    bytes: new Uint8Array([byte, byte, byte]),
    format,
    mimeType: `image/${format}`,
    width: 4,
    height: 4,
  };
}

async function readBack(form: ReturnType<typeof encodeMultipart>) {
  const data = await new Request("http://x/", {
    method: "POST",
    headers: { "content-type": form.contentType },
    body: new Uint8Array(Buffer.concat(form.body)),
  }).formData();
  const out: [string, string | number[]][] = [];
  for (const [name, value] of data.entries()) {
    out.push([
      name,
      typeof value === "string" ? value : [...new Uint8Array(await value.arrayBuffer())],
    ]);
  }
  return out;
}

describe("toOpenAIEditForm", () => {
  it("GPT image: image[] per image in order, the mask, input_fidelity; no response_format", async () => {
    const req = create(CreateImageRequestSchema, {
      prompt: "p",
      n: 2,
      responseFormat: "url",
      quality: "low",
    });
    const edit: EditInput = {
      kind: "edit",
      images: [image(1), image(2, "jpeg")],
      mask: image(9),
      inputFidelity: "high",
    };
    const fields = await readBack(
      encodeMultipart(toOpenAIEditForm(req, edit, "gpt-image-1", false)),
    );
    expect(fields).toEqual([
      ["prompt", "p"],
      ["model", "gpt-image-1"],
      ["n", "2"],
      ["quality", "low"],
      ["input_fidelity", "high"],
      ["image[]", [1, 1, 1]],
      ["image[]", [2, 2, 2]],
      ["mask", [9, 9, 9]],
    ]);
    expect(openAIEditPath(edit)).toBe("/images/edits");
  });

  it("dall-e-2: one `image`, response_format passed on", async () => {
    const req = create(CreateImageRequestSchema, { prompt: "p", responseFormat: "b64_json" });
    const fields = await readBack(
      encodeMultipart(
        toOpenAIEditForm(req, { kind: "edit", images: [image(3)] }, "dall-e-2", true),
      ),
    );
    expect(fields).toEqual([
      ["prompt", "p"],
      ["model", "dall-e-2"],
      ["response_format", "b64_json"],
      ["image", [3, 3, 3]],
    ]);
  });

  it("variation: no prompt, only the variation fields", async () => {
    const req = create(CreateImageRequestSchema, { n: 3, size: "512x512", user: "u" });
    const edit: EditInput = { kind: "variation", images: [image(5)] };
    const fields = await readBack(encodeMultipart(toOpenAIEditForm(req, edit, "dall-e-2", true)));
    expect(fields).toEqual([
      ["model", "dall-e-2"],
      ["n", "3"],
      ["size", "512x512"],
      ["user", "u"],
      ["image", [5, 5, 5]],
    ]);
    expect(openAIEditPath(edit)).toBe("/images/variations");
  });

  it("Azure (no model): the deployment names it", async () => {
    const req = create(CreateImageRequestSchema, { prompt: "p" });
    const form = toOpenAIEditForm(req, { kind: "edit", images: [image(1)] }, undefined, false);
    expect(form.fields.map(([n]) => n)).toEqual(["prompt"]);
  });
});
