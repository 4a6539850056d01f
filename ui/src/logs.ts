/**
 * Logs: the newest requests from the management API's spend log (`GET /spend/logs`),
 * filtered by period, key, model and status (all applied by the gateway's database), one
 * row per request, answered or failed. A row opens to show everything the log holds of the
 * request: its id, who asked, the deployment that answered or was tried last, size,
 * quality, times and how many upstream attempts it took.
 */
import { call, type KeyInfo, listModels, query, type SpendLog } from "./api.ts";
import { h, replace } from "./dom.ts";
import { count, dateTime, ms, shortToken, usd, utcDay } from "./format.ts";

/** Rows asked for at a time: the newest. */
export const LOG_ROWS = 100;

const PERIODS = [
  ["1", "Today (UTC)"],
  ["7", "Last 7 days"],
  ["30", "Last 30 days"],
] as const;

export function logs(): Node {
  const period = select("log-period", "Period", PERIODS);
  const key = select("log-key", "Key", [["", "Any key"]]);
  const model = select("log-model", "Model", [["", "Any model"]]);
  const status = select("log-status", "Status", [
    ["", "Any status"],
    ["success", "Answered"],
    ["failure", "Failed"],
  ]);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const box = h("div", { class: "panel scroll" }, h("p", {}, "Loading the log…"));
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  const load = () =>
    void show(box, summary, {
      days: Number(period.input.value),
      api_key: key.input.value,
      model: model.input.value,
      status: status.input.value,
    });
  for (const s of [period, key, model, status]) s.input.addEventListener("change", load);
  refresh.addEventListener("click", load);
  void fillChoices(key.input, model.input);
  load();
  return h(
    "section",
    { class: "stack", "aria-label": "Logs" },
    h(
      "div",
      { class: "panel row controls" },
      period.field,
      key.field,
      model.field,
      status.field,
      refresh,
    ),
    summary,
    box,
  );
}

/** The keys (by alias) and models a filter may name. */
async function fillChoices(keySelect: HTMLSelectElement, modelSelect: HTMLSelectElement) {
  const [list, models] = await Promise.all([
    call<{ keys: string[] }>("GET", "/key/list"),
    listModels(),
  ]);
  if (models.ok)
    for (const m of models.data.data) modelSelect.append(h("option", { value: m.id }, m.id));
  if (!list.ok) return;
  const infos = await Promise.all(
    list.data.keys.map((token) =>
      call<{ key: string; info: KeyInfo }>("GET", `/key/info${query({ key: token })}`),
    ),
  );
  for (const answer of infos) {
    if (!answer.ok) continue;
    const { key: token, info } = answer.data;
    keySelect.append(h("option", { value: token }, info.key_alias ?? shortToken(token)));
  }
}

interface Filter {
  days: number;
  api_key: string;
  model: string;
  status: string;
}

/** Answers to older filters that arrive after newer ones are dropped. */
let latest = 0;

async function show(box: HTMLElement, summary: HTMLElement, f: Filter): Promise<void> {
  const asked = ++latest;
  box.setAttribute("aria-busy", "true");
  const answer = await call<SpendLog[]>(
    "GET",
    `/spend/logs${query({
      start_date: utcDay(f.days - 1),
      end_date: utcDay(0),
      api_key: f.api_key,
      model: f.model,
      status: f.status,
      limit: LOG_ROWS,
    })}`,
  );
  if (asked !== latest) return;
  box.removeAttribute("aria-busy");
  if (!answer.ok) {
    replace(summary);
    return replace(
      box,
      h("p", { role: "alert" }, `The log could not be read: ${answer.error.message}`),
    );
  }
  const rows = answer.data;
  replace(
    summary,
    rows.length === LOG_ROWS
      ? `The newest ${LOG_ROWS} requests that match.`
      : `${count(rows.length)} ${rows.length === 1 ? "request matches" : "requests match"}.`,
  );
  if (rows.length === 0) return replace(box, h("p", { class: "empty" }, "No request matches."));
  const head = [
    "Time",
    "Key",
    "Model",
    "Deployment",
    "Status",
    "Images",
    "Cost",
    "Took",
    "Attempts",
  ];
  const tbody = h("tbody", {});
  rows.forEach((row, i) => {
    tbody.append(...logRow(row, `log-${i}`));
  });
  replace(
    box,
    h(
      "table",
      { class: "log" },
      h("caption", { class: "visually-hidden" }, "Requests"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...head.map((t, i) => h("th", { scope: "col", class: i >= 5 ? "num" : undefined }, t)),
        ),
      ),
      tbody,
    ),
  );
}

/** A request's row and, after it, its details (hidden until its time is pressed). */
function logRow(row: SpendLog, id: string): [HTMLElement, HTMLElement] {
  const took = Date.parse(row.endTime) - Date.parse(row.startTime);
  const details = h(
    "tr",
    { class: "details", id, hidden: true },
    h("td", { colspan: 9 }, facts(row, took)),
  );
  const toggle = h(
    "button",
    {
      type: "button",
      class: "link",
      "aria-expanded": "false",
      "aria-controls": id,
      title: "Show this request's details",
    },
    dateTime(row.startTime),
  );
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    details.hidden = !open;
  });
  const failed = row.status !== "success";
  return [
    h(
      "tr",
      { class: failed ? "failed" : undefined },
      h("td", {}, toggle),
      h("td", {}, row.key_alias ?? (row.api_key ? shortToken(row.api_key) : "–")),
      h("td", {}, row.model ?? "–"),
      h("td", {}, row.model_id ?? "–"),
      h("td", {}, failed ? "Failed" : "Answered"),
      h("td", { class: "num" }, count(row.images)),
      h("td", { class: "num" }, usd(row.spend)),
      h("td", { class: "num" }, ms(took)),
      h("td", { class: "num" }, count(row.attempts)),
    ),
    details,
  ];
}

/** Each attempt in order: "hq-1 failed (upstream_timeout), then hq-2 answered". */
function attemptList(log: NonNullable<SpendLog["attempt_log"]>): string {
  return log
    .map((a) => `${a.deployment} ${a.error === undefined ? "answered" : `failed (${a.error})`}`)
    .join(", then ");
}

function facts(row: SpendLog, took: number): HTMLElement {
  const log = row.attempt_log ?? [];
  // Each attempt when the row lists them; else (rows from before) where the last one went.
  const which =
    log.length > 0
      ? `: ${attemptList(log)}`
      : row.model_id
        ? `; the last on ${row.model_id}${row.provider ? ` (${row.provider})` : ""}`
        : "";
  const attempts =
    row.attempts === 0 && log.length === 0
      ? "None: it was answered or refused before any upstream call."
      : `${count(row.attempts)} upstream ${row.attempts === 1 ? "attempt" : "attempts"}${which}.`;
  const items: [string, string][] = [
    ["Request id", row.request_id],
    ["Status", row.status === "success" ? "Answered" : "Failed"],
    ["Attempts", attempts],
    ["Key", row.api_key ? `${row.key_alias ?? "(no alias)"}, token ${row.api_key}` : "None"],
    ["End user", row.end_user ?? "–"],
    ["Model", row.model ?? "–"],
    ["Size", row.size ?? "not recorded"],
    ["Quality", row.quality ?? "not recorded"],
    ["Images", count(row.images)],
    ["Cost", usd(row.spend)],
    ["Started", dateTime(row.startTime)],
    ["Ended", `${dateTime(row.endTime)} (${ms(took)})`],
  ];
  const dl = h("dl", { class: "facts wide" });
  for (const [name, value] of items) dl.append(h("dt", {}, name), h("dd", {}, value));
  return dl;
}

function select(id: string, label: string, options: readonly (readonly [string, string])[]) {
  const input = h(
    "select",
    { id, name: id },
    ...options.map(([v, t]) => h("option", { value: v }, t)),
  );
  return { input, field: h("div", { class: "field" }, h("label", { for: id }, label), input) };
}
