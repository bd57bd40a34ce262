// ECharts, with only the charts and components the pages use (tree-shaken by esbuild), drawn as
// SVG: crisp at any zoom, printable, and readable by the browser tests.

import { BarChart, LineChart, PieChart, ScatterChart } from "echarts/charts";
import {
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
} from "echarts/components";
import * as echarts from "echarts/core";
import { SVGRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  LineChart,
  PieChart,
  ScatterChart,
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
  SVGRenderer,
]);

export type Option = echarts.EChartsCoreOption;

/** A colour-blind-safe palette (Okabe–Ito), readable on white. */
export const palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

// The page's font (app.css), named rather than inherited: ECharts measures labels with it to
// lay out the axes, and "inherit" would measure one font and draw another.
const kFont = '"DejaVu Sans", system-ui, -apple-system, "Segoe UI", sans-serif';

const live = new Set<echarts.ECharts>();
const observer = new ResizeObserver((entries) => {
  for (const e of entries) echarts.getInstanceByDom(e.target as HTMLElement)?.resize();
});

/** Draws `option` into a new chart element appended to `parent`. */
export function chart(parent: HTMLElement, option: Option, height = 260): echarts.ECharts {
  const el = document.createElement("div");
  el.className = "chart";
  el.style.height = height + "px";
  el.setAttribute("role", "img");
  parent.append(el);
  const c = echarts.init(el, undefined, { renderer: "svg" });
  c.setOption({ color: palette, animation: false, textStyle: { fontFamily: kFont }, ...option });
  live.add(c);
  observer.observe(el);
  return c;
}

/** Disposes every chart (when a view is left). */
export function disposeCharts(): void {
  for (const c of live) {
    observer.unobserve(c.getDom());
    c.dispose();
  }
  live.clear();
}

// The plot shrinks so that the axis labels fit inside the grid's margins.
const kFitLabels = { outerBoundsMode: "same", outerBoundsContain: "axisLabel" } as const;

/** A grid with these margins (px) whose axis labels fit inside them. */
export function grid(left: number, right: number, top: number, bottom: number) {
  return { left, right, top, bottom, ...kFitLabels };
}

/** A time series: one line (or bar) per series over category labels. `percent` lists the
 * axes (0 left, 1 right) whose values are fractions shown as percentages. */
export function series(
  parent: HTMLElement,
  x: string[],
  lines: { name: string; data: (number | null)[]; type?: "line" | "bar"; axis?: 0 | 1 }[],
  opts: { height?: number; percent?: (0 | 1)[]; stack?: boolean } = {},
): echarts.ECharts {
  const twoAxes = lines.some((l) => l.axis === 1);
  // (An axisLabel set to undefined would replace ECharts' default and hide the labels.)
  const axis = (percent: boolean) =>
    percent ? { type: "value", axisLabel: { formatter: (v: number) => (v * 100).toFixed(0) + "%" } } : { type: "value" };
  return chart(
    parent,
    {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: grid(8, 8, 32, 8),
      xAxis: { type: "category", data: x },
      yAxis: twoAxes ? [axis(!!opts.percent?.includes(0)), axis(!!opts.percent?.includes(1))] : axis(!!opts.percent?.includes(0)),
      series: lines.map((l) => ({
        name: l.name,
        type: l.type ?? "line",
        data: l.data,
        yAxisIndex: l.axis ?? 0,
        stack: opts.stack ? "total" : undefined,
        showSymbol: x.length <= 31,
        connectNulls: false,
      })),
    },
    opts.height,
  );
}

/** Horizontal bars, largest first. */
export function bars(parent: HTMLElement, names: string[], values: number[], height?: number): echarts.ECharts {
  return chart(
    parent,
    {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: grid(8, 24, 8, 8),
      xAxis: { type: "value" },
      yAxis: { type: "category", data: names, inverse: true },
      series: [{ type: "bar", data: values }],
    },
    height ?? Math.max(160, names.length * 28 + 24),
  );
}
