/**
 * The playground: one prompt sent to up to four models at once, each answer side by side
 * with the size the image really has (read from the decoded image), the latency the
 * browser saw and the cost the gateway reported (`x-imagegate-cost-usd`), or the error.
 * Every request asks for `b64_json`, so images are shown as `data:` URLs and the page
 * never loads anything from outside the gateway.
 */
import { call, listModels, type ModelEntry } from "./api.ts";
import { h, replace } from "./dom.ts";

export const MAX_MODELS = 4;

/** Sizes and qualities across the models; a model that lacks one answers with its error. */
const SIZES = [
  "256x256",
  "512x512",
  "1024x1024",
  "1024x1536",
  "1536x1024",
  "1792x1024",
  "1024x1792",
];
const QUALITIES = ["auto", "low", "medium", "high", "standard", "hd"];

interface ImagesAnswer {
  data?: { b64_json?: string; revised_prompt?: string }[];
  output_format?: string;
}

export function playground(): Node {
  const section = h("section", { class: "playground", "aria-label": "Playground" });
  const models = h("div", { class: "models" }, h("p", {}, "Loading the models…"));
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: 3, required: true });
  const size = select("size", "Size", SIZES);
  const quality = select("quality", "Quality", QUALITIES);
  const message = h("p", { class: "message", role: "alert" });
  const generate = h("button", { type: "submit" }, "Generate");
  const results = h("div", { class: "results", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "panel", method: "post" },
    h("label", { for: "prompt" }, "Prompt"),
    prompt,
    models,
    h("div", { class: "row" }, size.field, quality.field),
    message,
    generate,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = [...form.querySelectorAll<HTMLInputElement>("input[name=model]:checked")].map(
      (c) => c.value,
    );
    const text = prompt.value.trim();
    if (text === "") return void replace(message, "Write a prompt first.");
    if (picked.length === 0) return void replace(message, "Pick at least one model.");
    replace(message);
    generate.disabled = true;
    results.setAttribute("aria-busy", "true");
    replace(results);
    await Promise.all(
      picked.map((model) => {
        const card = h("figure", { class: "result" });
        results.appendChild(card);
        return runOne(card, model, text, size.input.value, quality.input.value);
      }),
    );
    results.removeAttribute("aria-busy");
    generate.disabled = false;
  });
  void loadModels(models);
  section.append(form, h("h2", { class: "visually-hidden" }, "Results"), results);
  return section;
}

function select(id: string, label: string, values: readonly string[]) {
  const input = h(
    "select",
    { id, name: id },
    h("option", { value: "" }, "Model default"),
    ...values.map((v) => h("option", { value: v }, v)),
  );
  return { input, field: h("div", { class: "field" }, h("label", { for: id }, label), input) };
}

async function loadModels(box: HTMLElement): Promise<void> {
  const answer = await listModels();
  if (!answer.ok)
    return replace(
      box,
      h("p", { role: "alert" }, `The models could not be listed: ${answer.error.message}`),
    );
  const list = answer.data.data;
  if (list.length === 0)
    return replace(
      box,
      h("p", { role: "alert" }, "This gateway lists no models: add a model_list to its config."),
    );
  const count = h("span", { class: "hint", id: "models-hint" });
  const fieldset = h(
    "fieldset",
    { "aria-describedby": "models-hint" },
    h("legend", {}, "Models ", count),
  );
  // The list scrolls (dev serves dozens of models); the legend and its count stay in view.
  const scroller = h("div", { class: "model-list" });
  fieldset.appendChild(scroller);
  const byOwner = new Map<string, ModelEntry[]>();
  for (const m of list) byOwner.set(m.owned_by, [...(byOwner.get(m.owned_by) ?? []), m]);
  let n = 0;
  for (const [owner, entries] of byOwner) {
    const group = h("div", { class: "owner" }, h("p", { class: "owner-name" }, owner));
    for (const m of entries) {
      const id = `model-${n++}`;
      group.appendChild(
        h(
          "div",
          { class: "check" },
          h("input", { type: "checkbox", id, name: "model", value: m.id }),
          h("label", { for: id }, m.id),
        ),
      );
    }
    scroller.appendChild(group);
  }
  // Up to four: once four are picked, the others wait until one is unpicked.
  const update = () => {
    const boxes = [...fieldset.querySelectorAll<HTMLInputElement>("input[name=model]")];
    const picked = boxes.filter((b) => b.checked).length;
    for (const b of boxes) b.disabled = !b.checked && picked >= MAX_MODELS;
    replace(count, `(${picked} of up to ${MAX_MODELS} picked)`);
  };
  fieldset.addEventListener("change", update);
  update();
  replace(box, fieldset);
}

async function runOne(
  card: HTMLElement,
  model: string,
  prompt: string,
  size: string,
  quality: string,
): Promise<void> {
  const status = h("p", { class: "status" }, "Generating…");
  replace(card, h("figcaption", {}, h("strong", {}, model)), status);
  const body: Record<string, unknown> = { model, prompt, n: 1, response_format: "b64_json" };
  if (size) body.size = size;
  if (quality) body.quality = quality;
  const started = performance.now();
  const answer = await call<ImagesAnswer>("POST", "/v1/images/generations", { body });
  const latency = `${Math.round(performance.now() - started)} ms`;
  const cost = costOf(answer.headers);
  if (!answer.ok) {
    card.classList.add("failed");
    replace(
      status,
      h(
        "span",
        { role: "alert" },
        `Error ${answer.status || ""} ${answer.error.code ?? answer.error.type ?? ""}: ${answer.error.message}`,
      ),
    );
    card.appendChild(
      facts([
        ["Latency", latency],
        ["Cost", cost],
      ]),
    );
    return;
  }
  const b64 = answer.data.data?.[0]?.b64_json;
  if (!b64) {
    card.classList.add("failed");
    replace(status, h("span", { role: "alert" }, "The answer holds no image."));
    return;
  }
  const img = h("img", {
    src: `data:${mimeOf(b64, answer.data.output_format)};base64,${b64}`,
    alt: `${model}: ${prompt}`,
  });
  let produced: string;
  try {
    await img.decode();
    produced = `${img.naturalWidth}×${img.naturalHeight}`;
  } catch {
    card.classList.add("failed");
    produced = "does not decode";
  }
  status.remove();
  card.append(
    img,
    facts([
      ["Size", produced],
      ["Latency", latency],
      ["Cost", cost],
    ]),
  );
}

function facts(rows: [string, string][]): HTMLElement {
  const dl = h("dl", { class: "facts" });
  for (const [name, value] of rows) dl.append(h("dt", {}, name), h("dd", {}, value));
  return dl;
}

function costOf(headers: Headers | undefined): string {
  const usd = headers?.get("x-imagegate-cost-usd");
  if (usd === null || usd === undefined) return "not reported";
  return `$${usd}`;
}

/** The image type from its first bytes (base64 of the format's signature). */
function mimeOf(b64: string, outputFormat?: string): string {
  if (b64.startsWith("iVBOR")) return "image/png";
  if (b64.startsWith("/9j/")) return "image/jpeg";
  if (b64.startsWith("UklGR")) return "image/webp";
  // "<?xml" or "<svg": shown by an <img>, so an SVG's scripts never run.
  if (b64.startsWith("PD94") || b64.startsWith("PHN2")) return "image/svg+xml";
  if (outputFormat === "jpeg" || outputFormat === "webp") return `image/${outputFormat}`;
  return "image/png";
}
