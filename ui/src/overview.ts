/**
 * Overview: requests, images, errors and cost over time, by model or by key, from the
 * management API's `GET /global/spend/series` (summed by the gateway's database). A period
 * and a grouping are picked; the totals, four charts and a table of each group follow.
 */
import { call, query, type SpendPoint, type SpendSeries } from "./api.ts";
import { chart, type Line } from "./chart.ts";
import { h, replace } from "./dom.ts";
import { count, shortToken, usd, utcDay } from "./format.ts";

const PERIODS = {
  "24h": { label: "Last 24 hours", bucket: "hour", hours: 24 },
  "7d": { label: "Last 7 days", bucket: "hour", hours: 7 * 24 },
  "30d": { label: "Last 30 days", bucket: "day", hours: 30 * 24 },
} as const;
type Period = keyof typeof PERIODS;

const GROUPS = { model: "By model", api_key: "By key" } as const;
type Group = keyof typeof GROUPS;

/** Lines drawn per chart; the rest are summed as "others". */
const MAX_LINES = 6;

const METRICS = [
  { field: "requests", title: "Requests", format: count },
  { field: "images", title: "Images", format: count },
  { field: "errors", title: "Errors", format: count },
  { field: "spend", title: "Cost (USD)", format: usd },
] as const;
type Metric = (typeof METRICS)[number]["field"];

export function overview(): Node {
  const period = picker("period", "Period", PERIODS, "24h");
  const group = picker("group", "Group", GROUPS, "model");
  const body = h("div", { class: "stack" });
  const load = () => void show(body, period.input.value as Period, group.input.value as Group);
  period.input.addEventListener("change", load);
  group.input.addEventListener("change", load);
  load();
  return h(
    "section",
    { class: "stack", "aria-label": "Overview" },
    h("div", { class: "panel row controls" }, period.field, group.field),
    body,
  );
}

function picker<T extends string>(
  id: string,
  label: string,
  options: Record<T, string | { label: string }>,
  initial: T,
) {
  const input = h(
    "select",
    { id, name: id },
    ...Object.entries<string | { label: string }>(options).map(([value, o]) =>
      h("option", { value, selected: value === initial }, typeof o === "string" ? o : o.label),
    ),
  );
  return { input, field: h("div", { class: "field" }, h("label", { for: id }, label), input) };
}

/** Answers to an older pick that arrive after a newer one are dropped. */
let latest = 0;

async function show(box: HTMLElement, period: Period, group: Group): Promise<void> {
  const asked = ++latest;
  const { bucket, hours } = PERIODS[period];
  const width = bucket === "hour" ? 3_600_000 : 86_400_000;
  const now = Date.now();
  const last = Math.floor(now / width) * width;
  const first = last - (Math.ceil((hours * 3_600_000) / width) - 1) * width;
  box.setAttribute("aria-busy", "true");
  const range = { start_date: utcDay(0, first), end_date: utcDay(0, now), bucket };
  const [totals, grouped] = await Promise.all([
    call<SpendSeries>("GET", `/global/spend/series${query(range)}`),
    call<SpendSeries>("GET", `/global/spend/series${query({ ...range, group_by: group })}`),
  ]);
  if (asked !== latest) return;
  box.removeAttribute("aria-busy");
  if (!totals.ok || !grouped.ok) {
    const error = totals.ok ? (grouped as { error: { message: string } }).error : totals.error;
    return replace(
      box,
      h("p", { role: "alert" }, `The spend series could not be read: ${error.message}`),
    );
  }
  const x: number[] = [];
  for (let t = first; t <= last; t += width) x.push(t);
  const inRange = (p: SpendPoint) => {
    const t = Date.parse(p.start);
    return t >= first && t <= last;
  };
  const totalPoints = totals.data.points.filter(inRange);
  const points = grouped.data.points.filter(inRange);
  const sum = (field: Metric) => totalPoints.reduce((a, p) => a + p[field], 0);
  const cards = h(
    "dl",
    { class: "cards" },
    ...METRICS.map((m) =>
      h("div", { class: "card panel" }, h("dt", {}, m.title), h("dd", {}, m.format(sum(m.field)))),
    ),
  );
  if (totalPoints.length === 0) {
    return replace(
      box,
      cards,
      h(
        "p",
        { class: "panel empty" },
        `No requests in the ${PERIODS[period].label.toLowerCase()}. Make some (the Playground will do), then come back.`,
      ),
    );
  }

  // Groups by spend, then requests: the largest drawn, the rest summed.
  const byGroup = new Map<
    string,
    { label: string; totals: Record<Metric, number>; at: Map<number, SpendPoint> }
  >();
  for (const p of points) {
    const key = p.group ?? "";
    let g = byGroup.get(key);
    if (g === undefined) {
      g = {
        label: labelOf(group, p),
        totals: { requests: 0, images: 0, errors: 0, spend: 0 },
        at: new Map(),
      };
      byGroup.set(key, g);
    }
    for (const m of METRICS) g.totals[m.field] += p[m.field];
    g.at.set(Date.parse(p.start), p);
  }
  // A regenerated key has a new token: its rows before and after are two groups of one alias.
  const seen = new Map<string, number>();
  for (const g of byGroup.values()) seen.set(g.label, (seen.get(g.label) ?? 0) + 1);
  for (const [token, g] of byGroup)
    if ((seen.get(g.label) ?? 0) > 1 && group === "api_key")
      g.label = `${g.label} (${shortToken(token)})`;
  const ranked = [...byGroup.values()].sort(
    (a, b) => b.totals.spend - a.totals.spend || b.totals.requests - a.totals.requests,
  );
  const drawn = ranked.slice(0, ranked.length > MAX_LINES ? MAX_LINES - 1 : MAX_LINES);
  const rest = ranked.slice(drawn.length);
  const lines = (field: Metric): Line[] => {
    const out = drawn.map((g) => ({
      label: g.label,
      values: x.map((t) => g.at.get(t)?.[field] ?? 0),
    }));
    if (rest.length > 0)
      out.push({
        label: `${rest.length} others`,
        values: x.map((t) => rest.reduce((a, g) => a + (g.at.get(t)?.[field] ?? 0), 0)),
      });
    return out;
  };
  const per = bucket === "hour" ? "hour" : "day";
  const charts = h(
    "div",
    { class: "charts" },
    ...METRICS.map((m) =>
      chart({
        title: `${m.title} per ${per}, ${GROUPS[group].toLowerCase()}`,
        x: x.map((t) => t / 1000),
        lines: lines(m.field),
        format: m.format,
        integer: m.field !== "spend",
        summary: `${m.format(sum(m.field))} in total over the ${PERIODS[period].label.toLowerCase()}; ${drawn
          .map((g) => `${g.label} ${m.format(g.totals[m.field])}`)
          .join(", ")}.`,
      }),
    ),
  );
  const table = h(
    "table",
    {},
    h("caption", {}, `${GROUPS[group]}, ${PERIODS[period].label.toLowerCase()}`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, group === "model" ? "Model" : "Key"),
        ...METRICS.map((m) => h("th", { scope: "col", class: "num" }, m.title)),
      ),
    ),
    h(
      "tbody",
      {},
      ...ranked.map((g) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, g.label),
          ...METRICS.map((m) => h("td", { class: "num" }, m.format(g.totals[m.field]))),
        ),
      ),
    ),
  );
  replace(box, cards, charts, h("div", { class: "panel scroll" }, table));
}

function labelOf(group: Group, p: SpendPoint): string {
  // No key: an open gateway's requests, or ones refused for their key.
  if (p.group === undefined) return group === "model" ? "(no model)" : "(without a key)";
  if (group === "model") return p.group;
  return p.key_alias ?? shortToken(p.group);
}
