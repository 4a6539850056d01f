/**
 * Deployments: each one in rotation or cooling down (and until when), upstream requests in
 * flight, and the last minutes' attempts, error rate and latency p50/p95, from the
 * management API's `GET /model/stats`, with each one's price per image from
 * `GET /model/info`. Read again every few seconds while the page is in view.
 */
import { call, type DeploymentInfo, type DeploymentStats, type ModelStats } from "./api.ts";
import { h, replace } from "./dom.ts";
import { count, dateTime, fromNow, ms, percent, usd } from "./format.ts";

const REFRESH_MS = 5000;

export function deployments(): Node {
  const filter = h("input", {
    id: "deployment-filter",
    name: "filter",
    type: "search",
    autocomplete: "off",
    spellcheck: "false",
  });
  const cooling = h("input", { id: "only-cooling", name: "only-cooling", type: "checkbox" });
  const refresh = h("button", { type: "button" }, "Refresh");
  const summary = h("p", { class: "summary", "aria-live": "polite" }, "Loading the deployments…");
  const body = h("div", { class: "panel scroll" });
  const section = h(
    "section",
    { class: "stack", "aria-label": "Deployments" },
    h(
      "div",
      { class: "panel row controls" },
      h(
        "div",
        { class: "field" },
        h("label", { for: "deployment-filter" }, "Filter by name, model or provider"),
        filter,
      ),
      h(
        "div",
        { class: "check" },
        cooling,
        h("label", { for: "only-cooling" }, "Only those cooling down"),
      ),
      refresh,
    ),
    summary,
    body,
  );

  let rows: { stats: DeploymentStats; price: number | undefined }[] = [];
  let window = 0;
  const draw = () => {
    const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = rows.filter(
      ({ stats: d }) =>
        (!cooling.checked || !d.in_rotation) &&
        words.every((w) =>
          [d.id, d.model_name, d.provider, d.model].some((f) => f.toLowerCase().includes(w)),
        ),
    );
    const out = rows.filter((r) => !r.stats.in_rotation).length;
    const text = `${count(rows.length)} deployments: ${count(rows.length - out)} in rotation, ${count(out)} cooling down. Attempts, error rate and latency over the last ${Math.round(window / 60)} minutes, as this gateway process saw them.`;
    // A live region: announced when it changes, not on every refresh.
    if (summary.textContent !== text) replace(summary, text);
    replace(body, table(shown));
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const load = async () => {
    clearTimeout(timer);
    const [stats, info] = await Promise.all([
      call<ModelStats>("GET", "/model/stats"),
      call<{ data: DeploymentInfo[] }>("GET", "/model/info"),
    ]);
    if (!section.isConnected) return; // the page was left
    if (!stats.ok) {
      replace(summary);
      replace(
        body,
        h("p", { role: "alert" }, `The deployments could not be read: ${stats.error.message}`),
      );
    } else {
      const prices = new Map(
        info.ok
          ? info.data.data.map((d) => [d.model_info.id, d.model_info.output_cost_per_image])
          : [],
      );
      window = stats.data.window_seconds;
      rows = stats.data.data.map((d) => ({ stats: d, price: prices.get(d.id) }));
      draw();
    }
    timer = setTimeout(() => {
      if (section.isConnected) void load();
    }, REFRESH_MS);
  };
  filter.addEventListener("input", draw);
  cooling.addEventListener("change", draw);
  refresh.addEventListener("click", () => void load());
  void load();
  return section;
}

function table(rows: { stats: DeploymentStats; price: number | undefined }[]): Node {
  if (rows.length === 0) return h("p", { class: "empty" }, "No deployment matches.");
  const head = [
    "Deployment",
    "Provider · model",
    "State",
    "In flight",
    "Attempts",
    "Error rate",
    "Latency p50",
    "Latency p95",
    "Price per image",
  ];
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, "Deployments"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...head.map((t, i) => h("th", { scope: "col", class: i >= 3 ? "num" : undefined }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      ...rows.map(({ stats: d, price }) =>
        h(
          "tr",
          { class: d.in_rotation ? undefined : "cooling" },
          h(
            "th",
            { scope: "row" },
            d.id,
            // The model name clients use, where the deployment's id is not already it.
            d.model_name !== d.id && h("span", { class: "sub" }, `serves ${d.model_name}`),
          ),
          h("td", {}, `${d.provider} · ${d.model}`),
          h(
            "td",
            {},
            d.in_rotation || d.cooldown_until === undefined
              ? h("span", { class: "state ok" }, "In rotation")
              : h(
                  "span",
                  { class: "state bad", title: dateTime(d.cooldown_until) },
                  `Cooling down until ${new Date(d.cooldown_until).toLocaleTimeString("en-GB")} (${fromNow(d.cooldown_until)})`,
                ),
          ),
          h("td", { class: "num" }, count(d.in_flight)),
          h("td", { class: "num" }, count(d.attempts)),
          h("td", { class: "num" }, d.error_rate === undefined ? "–" : percent(d.error_rate)),
          h("td", { class: "num" }, d.latency_p50_ms === undefined ? "–" : ms(d.latency_p50_ms)),
          h("td", { class: "num" }, d.latency_p95_ms === undefined ? "–" : ms(d.latency_p95_ms)),
          h("td", { class: "num" }, price === undefined ? "unpriced" : usd(price)),
        ),
      ),
    ),
  );
}
