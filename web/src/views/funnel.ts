// Funnel: the acquisition funnel (visit, signup, trial, paid) as cohorts
// (GET /v1/insights/funnel, docs/insights.md), overall, by month, by region and by device.
// The global filters become funnel segments: the funnel is cut by each filtered dimension and
// only the segment that matches the filter is shown, so every count is the filtered cohort's.

import { Api } from "../api";
import { bars, chart, grid, series } from "../charts";
import { FilterState } from "../filters";
import { num, pct, period } from "../format";
import { Card, fill, h, table } from "../ui";

interface Step {
  step: string;
  count: number;
  step_conversion: number;
  overall_conversion: number;
  drop_off: number;
  drop_off_rate: number;
}
interface Segment {
  segment: Record<string, string>;
  steps: Step[];
}

const kStepNames: Record<string, string> = {
  visit: "Visit",
  signup: "Signup",
  trial_start: "Trial",
  paid_conversion: "Paid",
};

/** The funnel's segments cut by `by`, restricted to the filters' plan, region and partner. */
async function segments(api: Api, filters: FilterState, by: string[]): Promise<Segment[]> {
  const v = filters.value;
  const fixed: [string, string][] = (
    [
      ["plan", v.plan],
      ["region", v.region],
      ["partner", v.partner],
    ] as [string, string][]
  ).filter(([, value]) => value !== "");
  const dims = [...fixed.map(([d]) => d), ...by.filter((d) => !fixed.some(([f]) => f === d))];
  const r = await api.get<{ segments: Segment[] }>("/v1/insights/funnel", {
    ...filters.params(),
    segments: dims.length ? dims.join(",") : undefined,
  });
  return r.segments.filter((s) => fixed.every(([d, value]) => s.segment[d] === value));
}

const stepRows = (s: Segment) =>
  s.steps.map((x) => [x.step, x.count, x.step_conversion, x.overall_conversion, x.drop_off, x.drop_off_rate]);
const kStepColumns = ["step", "count", "step_conversion", "overall_conversion", "drop_off", "drop_off_rate"];

export async function funnelTab(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const overall = new Card("funnel", "Visitors at each step", { wide: true });
  const monthly = new Card("funnel-by-month", "Step conversion by month of entry");
  const regions = new Card("funnel-by-region", "Visit-to-paid conversion by region");
  const devices = new Card("funnel-by-device", "Visit-to-paid conversion by device");
  const drops = new Card("funnel-drop-off", "Where visitors drop off");
  root.append(h("div", { class: "grid" }, overall.root, monthly.root, drops.root, regions.root, devices.root));

  const whole = segments(api, filters, []);
  const paidRate = (s: Segment) => s.steps[s.steps.length - 1].overall_conversion;
  await Promise.all([
    fill(overall, () => whole, (ss) => {
      const s = ss[0];
      if (!s || s.steps[0].count === 0) return null;
      return {
        data: { columns: kStepColumns, rows: stepRows(s) },
        render: (body) => {
          chart(body, {
            tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
            grid: grid(8, 8, 24, 8),
            xAxis: { type: "category", data: s.steps.map((x) => kStepNames[x.step] ?? x.step) },
            yAxis: { type: "value" },
            series: [
              {
                type: "bar",
                data: s.steps.map((x) => x.count),
                label: { show: true, position: "top", formatter: (p: { dataIndex: number }) => `${num(s.steps[p.dataIndex].count)} (${pct(s.steps[p.dataIndex].overall_conversion)})` },
              },
            ],
          });
        },
      };
    }),
    fill(drops, () => whole, (ss) => {
      const s = ss[0];
      if (!s || s.steps[0].count === 0) return null;
      return {
        data: { columns: kStepColumns, rows: stepRows(s) },
        render: (body) =>
          body.append(
            table(
              ["Step", "Visitors", "From the step before", "Dropped", "Drop-off"],
              s.steps.map((x) => [kStepNames[x.step] ?? x.step, num(x.count), pct(x.step_conversion), num(x.drop_off), pct(x.drop_off_rate)]),
            ),
          ),
      };
    }),
    fill(monthly, () => segments(api, filters, ["month"]), (ss) => {
      const rows = ss.filter((s) => s.steps[0].count > 0).sort((a, b) => a.segment.month.localeCompare(b.segment.month));
      if (rows.length === 0) return null;
      const steps = rows[0].steps.slice(1);
      return {
        data: { columns: ["month", ...kStepColumns], rows: rows.flatMap((s) => stepRows(s).map((r) => [s.segment.month.slice(0, 10), ...r])) },
        render: (body) =>
          void series(
            body,
            rows.map((s) => period(s.segment.month.replace(" ", "T") + "Z", "month")),
            steps.map((st, i) => ({ name: (kStepNames[rows[0].steps[i].step] ?? "") + " → " + (kStepNames[st.step] ?? st.step), data: rows.map((s) => s.steps[i + 1].step_conversion) })),
            { percent: [0] },
          ),
      };
    }),
    ...(
      [
        [regions, "region"],
        [devices, "device"],
      ] as [Card, string][]
    ).map(([card, dim]) =>
      fill(card, () => segments(api, filters, [dim]), (ss) => {
        const rows = ss.filter((s) => s.steps[0].count > 0).sort((a, b) => paidRate(b) - paidRate(a));
        if (rows.length === 0) return null;
        return {
          data: { columns: [dim, ...kStepColumns], rows: rows.flatMap((s) => stepRows(s).map((r) => [s.segment[dim], ...r])) },
          render: (body) => {
            const c = bars(body, rows.map((s) => s.segment[dim]), rows.map(paidRate));
            c.setOption({ xAxis: { axisLabel: { formatter: (v: number) => (v * 100).toFixed(1) + "%" } }, tooltip: { valueFormatter: (v: number) => pct(v, 2) } });
          },
        };
      }),
    ),
  ]);
}
