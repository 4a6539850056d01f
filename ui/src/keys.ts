/**
 * Keys: the gateway's virtual keys with their models, rpm limit and spend against budget
 * (`GET /key/list`, then `GET /key/info` for each), and the management API's changes:
 * **Create key** (`POST /key/generate`), block and unblock, regenerate and delete (each of
 * the last two asks to be confirmed first). A new key (made or regenerated) is shown once,
 * in this page only: the gateway keeps nothing but its SHA-256. On an open gateway (dev)
 * the list is read-only: changes need the master key, which an open gateway does not have.
 */
import { call, type KeyInfo, listModels, type NewKey, query } from "./api.ts";
import { h, replace } from "./dom.ts";
import { count, dateTime, percent, shortToken, usd } from "./format.ts";
import type { Access } from "./pages.ts";

const PERIODS = [
  ["", "Never"],
  ["24h", "Every day"],
  ["7d", "Every 7 days"],
  ["30d", "Every 30 days"],
] as const;
const LIFETIMES = [
  ["", "Never"],
  ["1d", "In 1 day"],
  ["30d", "In 30 days"],
  ["90d", "In 90 days"],
] as const;

interface Row {
  token: string;
  info: KeyInfo;
}

export function keys(access: Access): Node {
  const shownOnce = h("div", { class: "shown-once", role: "status", "aria-live": "polite" });
  const listBox = h("div", { class: "panel scroll" }, h("p", {}, "Loading the keys…"));
  const message = h("p", { class: "message", role: "alert" });
  const reload = () => void load(listBox, message, access, shownOnce, reload);
  reload();
  return h(
    "section",
    { class: "stack", "aria-label": "Keys" },
    createForm(access, shownOnce, reload),
    shownOnce,
    message,
    h(
      "div",
      { class: "row-between" },
      h("h2", {}, "Keys"),
      h("button", { type: "button", class: "secondary", onclick: reload }, "Refresh"),
    ),
    listBox,
  );
}

function createForm(access: Access, shownOnce: HTMLElement, reload: () => void): Node {
  const alias = h("input", {
    id: "key-alias",
    name: "key_alias",
    type: "text",
    autocomplete: "off",
  });
  const rpm = h("input", { id: "key-rpm", name: "rpm_limit", type: "number", min: 1, step: 1 });
  const budget = h("input", {
    id: "key-budget",
    name: "max_budget",
    type: "number",
    min: 0,
    step: "any",
  });
  const period = choice("key-period", "Budget starts again", PERIODS);
  const lifetime = choice("key-expires", "Expires", LIFETIMES);
  const models = h("div", { class: "models" }, h("p", {}, "Loading the models…"));
  const message = h("p", { class: "message", role: "alert" });
  const create = h("button", { type: "submit" }, "Create key");
  const fields = h(
    "fieldset",
    { class: "plain", disabled: access === "open" },
    h(
      "div",
      { class: "row" },
      field("key-alias", "Alias", alias),
      field("key-rpm", "Requests per minute", rpm),
      field("key-budget", "Budget (USD)", budget),
      period.field,
      lifetime.field,
    ),
    models,
    message,
    create,
  );
  const form = h(
    "form",
    { class: "panel", method: "post", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, "Create a key"),
    access === "open" &&
      h(
        "p",
        { class: "note" },
        "This gateway is open (it has no master key), so it serves everyone without a key. Keys are made and changed with the master key: set general_settings.master_key to use them.",
      ),
    fields,
  );
  void listModels().then((answer) => {
    if (!answer.ok)
      return replace(
        models,
        h("p", { role: "alert" }, `The models could not be listed: ${answer.error.message}`),
      );
    const boxes = answer.data.data.map((m, i) =>
      h(
        "div",
        { class: "check" },
        h("input", { type: "checkbox", id: `key-model-${i}`, name: "models", value: m.id }),
        h("label", { for: `key-model-${i}` }, m.id),
      ),
    );
    replace(
      models,
      h(
        "fieldset",
        {},
        h("legend", {}, "Models ", h("span", { class: "hint" }, "(none picked: every model)")),
        h("div", { class: "model-list" }, h("div", { class: "owner" }, ...boxes)),
      ),
    );
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    if (alias.value.trim() !== "") body.key_alias = alias.value.trim();
    if (rpm.value !== "") body.rpm_limit = Number(rpm.value);
    if (budget.value !== "") body.max_budget = Number(budget.value);
    if (period.input.value !== "") body.budget_duration = period.input.value;
    if (lifetime.input.value !== "") body.duration = lifetime.input.value;
    body.models = [...form.querySelectorAll<HTMLInputElement>("input[name=models]:checked")].map(
      (c) => c.value,
    );
    create.disabled = true;
    replace(message);
    const answer = await call<NewKey>("POST", "/key/generate", { body });
    create.disabled = false;
    if (!answer.ok) return replace(message, `The key was not made: ${answer.error.message}`);
    form.reset();
    showOnce(shownOnce, answer.data, "made");
    reload();
  });
  return form;
}

/** The new key, in this page only, until the page is left or another key is shown. */
function showOnce(box: HTMLElement, made: NewKey, what: "made" | "regenerated"): void {
  const name = made.key_alias ?? shortToken(made.token);
  const value = h("input", {
    id: "new-key",
    type: "text",
    readonly: true,
    value: made.key,
    spellcheck: "false",
    autocomplete: "off",
  });
  const copied = h("span", { class: "hint", "aria-live": "polite" });
  const copy = h("button", { type: "button", class: "secondary" }, "Copy");
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(made.key);
      replace(copied, "Copied.");
    } catch {
      replace(copied, "Selected: copy it with your keyboard.");
    }
  });
  replace(
    box,
    h(
      "div",
      { class: "panel once" },
      h("h2", {}, `Key ${what}: ${name}`),
      h(
        "p",
        {},
        "Copy it now. The gateway keeps only its SHA-256, so this is the only time the key is shown.",
      ),
      h("label", { for: "new-key" }, "Key (shown once)"),
      value,
      h("div", { class: "row-start" }, copy, copied),
    ),
  );
  value.focus();
  value.select();
}

async function load(
  box: HTMLElement,
  message: HTMLElement,
  access: Access,
  shownOnce: HTMLElement,
  reload: () => void,
): Promise<void> {
  const list = await call<{ keys: string[] }>("GET", "/key/list");
  if (!list.ok)
    return replace(
      box,
      h("p", { role: "alert" }, `The keys could not be listed: ${list.error.message}`),
    );
  // One /key/info per key: the management API's list holds only tokens (as LiteLLM's does).
  const infos = await Promise.all(
    list.data.keys.map((token) =>
      call<{ key: string; info: KeyInfo }>("GET", `/key/info${query({ key: token })}`),
    ),
  );
  const rows: Row[] = [];
  for (const answer of infos)
    if (answer.ok) rows.push({ token: answer.data.key, info: answer.data.info });
  if (rows.length === 0)
    return replace(
      box,
      h(
        "p",
        { class: "empty" },
        access === "open" ? "No keys: this gateway is open." : "No keys yet: make one above.",
      ),
    );
  const act = async (path: string, body: unknown, done?: (data: NewKey) => void) => {
    replace(message);
    const answer = await call<NewKey>("POST", path, { body });
    if (!answer.ok) replace(message, `That did not work: ${answer.error.message}`);
    else done?.(answer.data);
    reload();
  };
  replace(
    box,
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, "Keys"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...[
            "Key",
            "Models",
            "Requests per minute",
            "Spend of budget",
            "Expires",
            "State",
            "Actions",
          ].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        ...rows.map((row, i) =>
          keyRow(row, `key-${i}`, access, {
            block: () => act("/key/block", { key: row.token }),
            unblock: () => act("/key/unblock", { key: row.token }),
            regenerate: () =>
              act("/key/regenerate", { key: row.token }, (made) =>
                showOnce(
                  shownOnce,
                  { ...made, key_alias: made.key_alias ?? row.info.key_alias },
                  "regenerated",
                ),
              ),
            remove: () => act("/key/delete", { keys: [row.token] }),
          }),
        ),
      ),
    ),
  );
}

interface Actions {
  block(): void;
  unblock(): void;
  regenerate(): void;
  remove(): void;
}

function keyRow({ token, info }: Row, id: string, access: Access, actions: Actions): Node {
  const expired = info.expires !== undefined && Date.parse(info.expires) <= Date.now();
  const state = info.blocked ? "Blocked" : expired ? "Expired" : "Active";
  const cell = h("div", { class: "actions" });
  // Each button's name is what it says; the row's key (the row header) describes it.
  const button = (label: string, onclick: () => void, danger = false) =>
    h(
      "button",
      { type: "button", class: danger ? "danger" : "secondary", "aria-describedby": id, onclick },
      label,
    );
  const confirmStep = (what: string, label: string, run: () => void) => {
    replace(
      cell,
      h("span", { class: "confirm" }, what),
      button(label, run, true),
      button("Cancel", showActions),
    );
    (cell.querySelector("button") as HTMLButtonElement).focus();
  };
  function showActions(): void {
    if (info.source === "config" || access === "open") {
      replace(
        cell,
        h(
          "span",
          { class: "hint" },
          info.source === "config" ? "From the config file" : "Needs the master key",
        ),
      );
      return;
    }
    replace(
      cell,
      info.blocked ? button("Unblock", actions.unblock) : button("Block", actions.block),
      button("Regenerate", () =>
        confirmStep(
          "The key in use stops working at once.",
          "Confirm regenerate",
          actions.regenerate,
        ),
      ),
      button(
        "Delete",
        () => confirmStep("Its spend goes with it.", "Confirm delete", actions.remove),
        true,
      ),
    );
  }
  showActions();
  return h(
    "tr",
    { class: state === "Active" ? undefined : "inactive" },
    h(
      "th",
      { scope: "row", id },
      info.key_alias ?? "(no alias)",
      h("span", { class: "sub", title: token }, shortToken(token)),
    ),
    h("td", {}, info.models.length === 0 ? "Every model" : info.models.join(", ")),
    h("td", { class: "num" }, info.rpm_limit === undefined ? "No limit" : count(info.rpm_limit)),
    h("td", {}, spend(info)),
    h("td", {}, info.expires === undefined ? "Never" : dateTime(info.expires)),
    h("td", {}, state, info.source === "config" && h("span", { class: "sub" }, "config file")),
    h("td", {}, cell),
  );
}

function spend(info: KeyInfo): Node {
  if (info.max_budget === undefined) return h("span", {}, `${usd(info.spend)} (no budget)`);
  const used = info.max_budget === 0 ? 1 : Math.min(1, info.spend / info.max_budget);
  return h(
    "div",
    { class: "spend" },
    h("span", {}, `${usd(info.spend)} of ${usd(info.max_budget)} (${percent(used)})`),
    h("meter", {
      min: 0,
      max: info.max_budget || 1,
      value: Math.min(info.spend, info.max_budget || 1),
      high: (info.max_budget || 1) * 0.8,
      optimum: 0,
      "aria-label": "Spend of budget",
    }),
    info.budget_reset_at !== undefined &&
      h("span", { class: "sub" }, `starts again ${dateTime(info.budget_reset_at)}`),
  );
}

function choice(id: string, label: string, options: readonly (readonly [string, string])[]) {
  const input = h(
    "select",
    { id, name: id },
    ...options.map(([v, t]) => h("option", { value: v }, t)),
  );
  return { input, field: field(id, label, input) };
}

function field(id: string, label: string, input: HTMLElement): HTMLElement {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}
