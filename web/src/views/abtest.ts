// A/B Testing: one experiment's report (GET /v1/insights/experiments/{key}, docs/abtest.md):
// an experiment picker, a frequentist/Bayesian switch, the sample-ratio check (a warning when
// the arms' sizes do not match the allocation), the lift of every metric with its interval, the
// sequential view (the always-valid confidence sequence as data arrived, against the fixed-
// horizon interval), and a power calculator (GET /v1/insights/power).
// Filters: the year range and the partner apply; experiment events carry no plan or region.

import { Api } from "../api";
import { chart, grid, series } from "../charts";
import { FilterState } from "../filters";
import { addDays, num, pct, signedPct } from "../format";
import { Card, fill, h, table } from "../ui";

interface Experiment {
  experiment: string;
  unit: string;
  first_exposure: string;
  last_exposure: string;
  units: number;
  metrics: string[];
}
type Interval = [number, number];
interface Comparison {
  metric: string;
  kind: "conversion" | "revenue";
  variant: string;
  frequentist: { mean_control: number; mean_treatment: number; abs_lift: number; rel_lift: number; p_value: number; ci_rel: Interval };
  p_holm: number;
  bayesian: { rel_lift: number; prob_treatment_better: number; expected_loss_control: number; expected_loss_treatment: number; ci_rel: Interval };
  sequential: { rel_lift: number; p_value: number; ci_rel: Interval; fixed_ci_rel: Interval };
  required_units_per_arm: number | null;
  power_now: number | null;
}
interface Report {
  experiment: string;
  unit: string;
  control: string;
  options: { alpha: number; allocation: number; srm_threshold: number };
  arms: { variant: string; units: number }[];
  srm: { statistic: number; p_value: number; mismatch: boolean; expected: number[] };
  comparisons: Comparison[];
  notes: string[];
}

type Method = "frequentist" | "bayesian";
let method: Method = "frequentist";
let chosen = "";

const label = (c: Comparison) => `${c.metric} (${c.kind === "revenue" ? "revenue per unit" : "conversion"})`;

async function report(api: Api, filters: FilterState, key: string, to?: string): Promise<Report> {
  const r = filters.range();
  return api.get<Report>("/v1/insights/experiments/" + encodeURIComponent(key), {
    from: r.from,
    to: to ?? r.to,
    partner: filters.value.partner,
  });
}

export async function abtestTab(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const picker = new Card("ab-picker", "Experiment", { wide: true, note: "Experiments are randomised per visitor or subscriber and carry no plan or region: the year range and the partner filter apply here." });
  root.append(h("div", { class: "grid" }, picker.root));
  const list = await api
    .get<{ experiments: Experiment[] }>("/v1/insights/experiments", { ...filters.params(), partner: filters.value.partner })
    .catch((e) => {
      picker.error(e);
      return null;
    });
  if (!list) return;
  if (list.experiments.length === 0) return picker.empty("No experiment has exposures in this range.");
  if (!list.experiments.some((e) => e.experiment === chosen)) chosen = list.experiments[0].experiment;

  picker.ready({ columns: ["experiment", "unit", "first_exposure", "last_exposure", "units"], rows: list.experiments.map((e) => [e.experiment, e.unit, e.first_exposure, e.last_exposure, e.units]) });
  const select = h("select", { id: "ab-experiment", "aria-label": "Experiment" }, ...list.experiments.map((e) => h("option", { value: e.experiment }, `${e.experiment} (${e.unit}s, ${num(e.units)} units)`)));
  select.value = chosen;
  const radios = (["frequentist", "bayesian"] as Method[]).map((m) => {
    const input = h("input", { type: "radio", name: "ab-method", value: m, id: "ab-" + m, checked: m === method });
    input.addEventListener("change", () => {
      method = m;
      void draw();
    });
    return h("label", { for: "ab-" + m, class: "radio" }, input, m === "frequentist" ? " Frequentist" : " Bayesian");
  });
  picker.body.append(h("div", { class: "filters" }, h("label", {}, "Experiment", select), h("fieldset", { class: "switch" }, h("legend", {}, "Method"), ...radios)));
  select.addEventListener("change", () => {
    chosen = select.value;
    void draw();
  });

  const srm = h("div", { class: "srm-slot" });
  const lifts = new Card("ab-lifts", "Lift of each metric, with its interval", { wide: true });
  const arms = new Card("ab-arms", "Arms");
  const sequential = new Card("ab-sequential", "Sequential view: the interval as data arrived", { wide: true, note: "The confidence sequence stays valid however often you look; the fixed-horizon interval is only valid at a planned end." });
  const power = new Card("ab-power", "Power calculator");
  root.append(srm, h("div", { class: "grid" }, lifts.root, arms.root, power.root, sequential.root));
  powerCalculator(api, power);

  async function draw(): Promise<void> {
    const key = chosen;
    const experiment = list!.experiments.find((e) => e.experiment === key)!;
    const current = report(api, filters, key);
    await Promise.all([
      current.then(
        (r) => {
          srm.replaceChildren(
            r.srm.mismatch
              ? h("div", { class: "state warn", role: "alert", "data-srm": "mismatch" }, `Sample ratio mismatch: the arms have ${r.arms.map((a) => num(a.units)).join(" and ")} units where ${r.srm.expected.map((x) => num(x)).join(" and ")} were expected (χ² p = ${r.srm.p_value.toExponential(2)} < ${r.options.srm_threshold}). Assignment or logging is broken; do not trust the lifts until it is explained.`)
              : h("p", { class: "note", "data-srm": "ok" }, `Sample ratio: fine (χ² p = ${r.srm.p_value.toFixed(3)}).`),
          );
        },
        () => srm.replaceChildren(),
      ),
      fill(lifts, () => current, (r) => (r.comparisons.length === 0 ? null : { data: liftData(r), render: (b) => drawLifts(b, r) })),
      fill(arms, () => current, (r) => ({
        data: { columns: ["variant", "units"], rows: r.arms.map((a) => [a.variant, a.units]) },
        render: (b) => b.append(table(["Variant", "Units"], r.arms.map((a) => [a.variant + (a.variant === r.control ? " (control)" : ""), num(a.units)]))),
      })),
      fill(sequential, () => sequence(api, filters, key, experiment), (points) => {
        if (points.length === 0) return null;
        return {
          data: { columns: ["to", "metric", "rel_lift", "seq_low", "seq_high", "fixed_low", "fixed_high"], rows: points.flatMap((p) => p.r.comparisons.map((c) => [p.to, label(c), c.sequential.rel_lift, ...c.sequential.ci_rel, ...c.sequential.fixed_ci_rel])) },
          render: (b) => {
            const first = points[points.length - 1].r.comparisons[0];
            const pick = (p: { r: Report }) => p.r.comparisons.find((c) => c.metric === first.metric && c.kind === first.kind);
            b.append(h("p", { class: "note" }, "Metric: " + label(first)));
            series(
              b,
              points.map((p) => p.to),
              [
                { name: "Lift", data: points.map((p) => pick(p)?.sequential.rel_lift ?? null) },
                { name: "Sequence low", data: points.map((p) => pick(p)?.sequential.ci_rel[0] ?? null) },
                { name: "Sequence high", data: points.map((p) => pick(p)?.sequential.ci_rel[1] ?? null) },
                { name: "Fixed low", data: points.map((p) => pick(p)?.sequential.fixed_ci_rel[0] ?? null) },
                { name: "Fixed high", data: points.map((p) => pick(p)?.sequential.fixed_ci_rel[1] ?? null) },
              ],
              { percent: [0] },
            );
          },
        };
      }),
    ]);
  }
  await draw();
}

function liftData(r: Report) {
  return {
    columns: ["metric", "kind", "variant", "rel_lift", "ci_low", "ci_high", "p_value", "p_holm", "prob_better", "loss_if_treatment"],
    rows: r.comparisons.map((c) => [c.metric, c.kind, c.variant, c.frequentist.rel_lift, ...c.frequentist.ci_rel, c.frequentist.p_value, c.p_holm, c.bayesian.prob_treatment_better, c.bayesian.expected_loss_treatment]),
  };
}

function drawLifts(body: HTMLElement, r: Report): void {
  const rows = r.comparisons;
  const est = (c: Comparison) => (method === "frequentist" ? c.frequentist : c.bayesian);
  // A forest plot: each metric's relative lift and its interval (confidence or credible).
  chart(
    body,
    {
      tooltip: { trigger: "item" },
      grid: grid(8, 24, 8, 8),
      xAxis: { type: "value", axisLabel: { formatter: (v: number) => (v * 100).toFixed(0) + "%" } },
      yAxis: { type: "category", data: rows.map(label), inverse: true },
      series: [
        // One thick line per interval (stacked bars cannot start below zero).
        ...rows.map((c, i) => ({
          type: "line",
          name: method === "frequentist" ? `${(1 - r.options.alpha) * 100}% confidence interval` : `${(1 - r.options.alpha) * 100}% credible interval`,
          data: [
            [est(c).ci_rel[0], i],
            [est(c).ci_rel[1], i],
          ],
          symbol: "none",
          lineStyle: { width: 10, color: "#56B4E9" },
          tooltip: { show: false },
        })),
        {
          type: "scatter",
          name: "Lift",
          symbolSize: 12,
          z: 3,
          itemStyle: { color: "#000000" },
          data: rows.map((c, i) => [est(c).rel_lift, i]),
          tooltip: { formatter: (p: { dataIndex: number }) => `${label(rows[p.dataIndex])}: ${signedPct(est(rows[p.dataIndex]).rel_lift)} (${signedPct(est(rows[p.dataIndex]).ci_rel[0])} to ${signedPct(est(rows[p.dataIndex]).ci_rel[1])})` },
          markLine: { silent: true, symbol: "none", data: [{ xAxis: 0 }], lineStyle: { color: "#4d5566" } },
        },
      ],
    },
    Math.max(140, rows.length * 48 + 40),
  );
  const verdict = (c: Comparison) => {
    if (method === "frequentist") {
      const sig = c.frequentist.p_value < r.options.alpha;
      return [pct(c.frequentist.p_value, 2), pct(c.p_holm, 2), sig ? (c.frequentist.rel_lift > 0 ? "better" : "worse") : "no difference shown"];
    }
    const p = c.bayesian.prob_treatment_better;
    return [pct(p, 1), c.kind === "conversion" ? pct(c.bayesian.expected_loss_treatment, 3) : num(c.bayesian.expected_loss_treatment, 2), p > 0.95 ? "likely better" : p < 0.05 ? "likely worse" : "uncertain"];
  };
  const heads = method === "frequentist" ? ["p-value", "p (Holm)", "Verdict"] : ["P(treatment better)", "Expected loss", "Verdict"];
  body.append(
    table(
      ["Metric", "Control", "Treatment", "Lift", "Interval", ...heads],
      rows.map((c) => {
        const e = est(c);
        const fmt = (v: number) => (c.kind === "conversion" ? pct(v, 2) : num(v / 100, 2));
        return [label(c), fmt(c.frequentist.mean_control), fmt(c.frequentist.mean_treatment), signedPct(e.rel_lift), `${signedPct(e.ci_rel[0])} to ${signedPct(e.ci_rel[1])}`, ...verdict(c)];
      }),
    ),
  );
  body.dataset.method = method;
}

/** The report as of several days from the first exposure to the end of the range. */
async function sequence(api: Api, filters: FilterState, key: string, e: Experiment): Promise<{ to: string; r: Report }[]> {
  const r = filters.range();
  const start = e.first_exposure.slice(0, 10) > r.from ? e.first_exposure.slice(0, 10) : r.from;
  const end = e.last_exposure.slice(0, 10) < r.to ? e.last_exposure.slice(0, 10) : r.to;
  const span = Math.round((Date.parse(end) - Date.parse(start)) / 86400000);
  if (span < 1) return [];
  const steps = Math.min(8, span);
  const days = Array.from({ length: steps }, (_, i) => addDays(start, Math.round(((i + 1) * span) / steps)));
  const reports = await Promise.all(days.map((d) => report(api, filters, key, d).catch(() => null)));
  return days.flatMap((d, i) => (reports[i] && reports[i]!.comparisons.length ? [{ to: d, r: reports[i]! }] : []));
}

function powerCalculator(api: Api, card: Card): void {
  const field = (id: string, labelText: string, value: string, step: string) =>
    h("label", {}, labelText, h("input", { id, type: "number", value, step, min: "0", required: true }));
  const form = h(
    "form",
    { class: "filters power" },
    field("pw-baseline", "Baseline conversion", "0.10", "0.01"),
    field("pw-mde", "Smallest lift worth finding (relative)", "0.05", "0.01"),
    field("pw-alpha", "Significance (alpha)", "0.05", "0.01"),
    field("pw-power", "Power", "0.8", "0.05"),
    h("button", { type: "submit" }, "Compute"),
  );
  const answer = h("div", { class: "big", "data-power": "", "aria-live": "polite" });
  const value = (id: string) => (form.querySelector("#" + id) as HTMLInputElement).value;
  const compute = async () => {
    try {
      const p = await api.get<{ units_per_arm: number }>("/v1/insights/power", { baseline: value("pw-baseline"), mde: value("pw-mde"), alpha: value("pw-alpha"), power: value("pw-power") });
      answer.textContent = num(p.units_per_arm) + " units per arm";
      answer.dataset.power = String(p.units_per_arm);
      card.ready({ columns: ["baseline", "mde", "alpha", "power", "units_per_arm"], rows: [[value("pw-baseline"), value("pw-mde"), value("pw-alpha"), value("pw-power"), p.units_per_arm]] });
      card.body.append(form, answer);
    } catch (e) {
      card.error(e);
      card.body.append(form);
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void compute();
  });
  void compute();
}
