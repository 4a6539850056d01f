/**
 * Time-series charts with uPlot (MIT, bundled: nothing is loaded from elsewhere): one
 * line per group, the page's own colours, sized to its container and redrawn when the
 * container changes width. Each chart is a figure with a caption and a text summary for
 * screen readers; the numbers themselves are also in the page's tables.
 */
import uPlot from "uplot";
import { h } from "./dom.ts";

/** Colours that read on the light and the dark background alike. */
export const PALETTE = [
  "#2f6fdb",
  "#d9480f",
  "#2b8a3e",
  "#ae3ec9",
  "#c29100",
  "#0c8599",
  "#e03131",
  "#868e96",
];

const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000];

export interface Line {
  label: string;
  values: number[];
}

export interface ChartSpec {
  title: string;
  /** Bucket starts, epoch seconds. */
  x: number[];
  lines: Line[];
  format: (n: number) => string;
  /** Counts: ticks at whole numbers only. */
  integer?: boolean;
  /** What a screen reader hears instead of the drawing. */
  summary: string;
}

export function chart(spec: ChartSpec): HTMLElement {
  const plotBox = h("div", {
    class: "plot",
    role: "img",
    "aria-label": `${spec.title}: ${spec.summary}`,
  });
  const figure = h("figure", { class: "chart panel" }, h("figcaption", {}, spec.title), plotBox);
  const css = getComputedStyle(document.documentElement);
  const text = css.getPropertyValue("--muted").trim() || "#57606a";
  const grid = css.getPropertyValue("--line").trim() || "#d0d7de";
  const axis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({
    stroke: text,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 },
    ...extra,
  });
  const options = (width: number): uPlot.Options => ({
    width,
    height: 220,
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    series: [
      {},
      ...spec.lines.map((line, i) => ({
        label: line.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        points: { show: spec.x.length < 40 },
        value: (_u: uPlot, v: number | null) => (v === null ? "–" : spec.format(v)),
      })),
    ],
    axes: [
      axis(),
      axis({
        values: (_u, splits) => splits.map((v) => spec.format(v)),
        ...(spec.integer ? { incrs: INTEGER_STEPS } : {}),
      }),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  });
  let plot: uPlot | undefined;
  // Drawn once the figure is in the page and has a width; resized with it.
  const observer = new ResizeObserver(() => {
    const width = Math.floor(plotBox.clientWidth);
    if (width <= 0) return;
    if (!plotBox.isConnected) {
      observer.disconnect();
      plot?.destroy();
      return;
    }
    if (plot === undefined) {
      plot = new uPlot(
        options(width),
        [spec.x, ...spec.lines.map((l) => l.values)] as uPlot.AlignedData,
        plotBox,
      );
    } else if (plot.width !== width) plot.setSize({ width, height: 220 });
  });
  observer.observe(plotBox);
  return figure;
}
