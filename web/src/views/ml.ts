// ML Insights: the churn and LTV models (docs/models.md). Versions with their holdout metrics
// against the logistic or linear baseline; global importance (mean |SHAP|); the subscribers at
// highest churn risk; and, for one subscriber, why: the SHAP force, waterfall and decision plots
// of GET /v1/subscribers/{id}/churn, which sum exactly from the model's base value to its output.
// Scores are as of training, for every subscriber active then; the partner filter applies to
// the risk list (the scores route takes ?partner=), plan and region do not.

import { bars, chart, grid } from "../charts";
import { FilterState } from "../filters";
import { num, pct } from "../format";
import { Card, fill, h, table } from "../ui";

interface Version {
  active: boolean;
  meta: {
    version: number;
    created: string;
    cutoff: string;
    horizon_days: number;
    rows: { train: number; holdout: number; scored: number };
    metrics: Record<string, number>;
    baseline: { metrics?: Record<string, number> } & Record<string, unknown>;
  };
}
interface Models {
  models: { model: "churn" | "ltv"; active_version: number | null; versions: Version[] }[];
}
interface Contribution {
  feature: string;
  value: number | null;
  contribution: number;
}
interface Explanation {
  model_version: number;
  base_value: number;
  margin: number;
  contributions: Contribution[];
}
interface Churn {
  subscriber_id: number;
  churn_probability: number;
  ltv: number | null;
  churn: Explanation;
  ltv_model: Explanation | null;
}

let which: "churn" | "ltv" = "churn";

const metricText = (m: Record<string, number> | undefined) =>
  m ? Object.entries(m).map(([k, v]) => `${k} ${num(v, k === "rmse" || k === "mae" ? 2 : 3)}`).join(", ") : "";

export async function mlTab(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const versions = new Card("ml-versions", "Model versions and their holdout metrics", { wide: true });
  const importance = new Card("ml-importance", "What drives churn (mean |SHAP|)");
  const risk = new Card("ml-risk", "Highest churn risk", { note: filters.value.plan || filters.value.region ? "Scores carry no plan or region: only the partner filter applies here." : undefined });
  const explain = new Card("ml-explain", "Why: one subscriber's prediction", { wide: true });
  root.append(h("div", { class: "grid" }, versions.root, importance.root, risk.root, explain.root));

  const models = api.get<Models>("/v1/insights/models");
  const top = api.get<{ scores: { subscriber_id: number; partner_id: number; prediction: number }[]; scored: number }>("/v1/insights/models/churn/scores", {
    limit: 20,
    partner: filters.value.partner,
  });

  await Promise.all([
    fill(versions, () => models, (m) => {
      const rows = m.models.flatMap((x) => x.versions.map((v) => ({ model: x.model, v })));
      if (rows.length === 0) return null;
      return {
        data: { columns: ["model", "version", "active", "created", "cutoff", "horizon_days", "metrics", "baseline"], rows: rows.map(({ model, v }) => [model, v.meta.version, v.active, v.meta.created, v.meta.cutoff, v.meta.horizon_days, metricText(v.meta.metrics), metricText(v.meta.baseline.metrics as Record<string, number>)]) },
        render: (b) =>
          b.append(
            table(
              ["Model", "Version", "Holdout from", "Horizon", "Metrics", "Baseline", "Rows (train / holdout)"],
              rows.map(({ model, v }) => [model + (v.active ? " (active)" : ""), String(v.meta.version), v.meta.cutoff, v.meta.horizon_days + " days", metricText(v.meta.metrics), metricText(v.meta.baseline.metrics as Record<string, number>), `${num(v.meta.rows.train)} / ${num(v.meta.rows.holdout)}`]),
            ),
          ),
      };
    }),
    fill(importance, () => api.get<{ importance: { feature: string; mean_abs_shap: number }[] }>("/v1/insights/models/churn/importance"), (r) => {
      const rows = r.importance.slice(0, 12);
      if (rows.length === 0) return null;
      return { data: { columns: ["feature", "mean_abs_shap"], rows: r.importance.map((x) => [x.feature, x.mean_abs_shap]) }, render: (b) => void bars(b, rows.map((x) => x.feature), rows.map((x) => x.mean_abs_shap)) };
    }),
    fill(risk, () => top, (r) => {
      if (r.scores.length === 0) return null;
      return {
        data: { columns: ["subscriber_id", "partner_id", "churn_probability"], rows: r.scores.map((s) => [s.subscriber_id, s.partner_id, s.prediction]) },
        render: (b) => {
          b.append(h("p", { class: "note" }, `${num(r.scored)} subscribers scored. Choose one to see why.`));
          b.append(
            table(
              ["Subscriber", "Partner", "Churn probability"],
              r.scores.map((s) => [h("button", { class: "ghost", type: "button", "data-explain": s.subscriber_id, onclick: (() => void show(s.subscriber_id)) as EventListener }, String(s.subscriber_id)), String(s.partner_id), pct(s.prediction, 1)]),
            ),
          );
        },
      };
    }),
  ]);

  async function show(id: number): Promise<void> {
    await fill(explain, () => api.get<Churn>(`/v1/subscribers/${id}/churn`), (c) => ({
      data: { columns: ["model", "feature", "value", "contribution"], rows: [...c.churn.contributions.map((x) => ["churn", x.feature, x.value, x.contribution]), ...(c.ltv_model?.contributions ?? []).map((x) => ["ltv", x.feature, x.value, x.contribution])] },
      render: (b) => drawExplanation(b, c),
    }));
  }
  const first = await top.catch(() => null);
  if (first?.scores.length) await show(first.scores[0].subscriber_id);
  else explain.empty("No churn model trained yet: tally train --data DIR --model churn.");
}

function drawExplanation(body: HTMLElement, c: Churn): void {
  const e = which === "ltv" && c.ltv_model ? c.ltv_model : c.churn;
  const switcher = h(
    "div",
    { class: "filters" },
    ...(["churn", "ltv"] as const).map((m) => {
      const b = h("button", { type: "button", class: m === which ? "" : "ghost", "aria-pressed": m === which ? "true" : "false", disabled: m === "ltv" && !c.ltv_model }, m === "churn" ? "Churn" : "LTV");
      b.addEventListener("click", () => {
        which = m;
        body.replaceChildren();
        drawExplanation(body, c);
      });
      return b;
    }),
  );
  const headline =
    which === "churn" || !c.ltv_model
      ? `Subscriber ${c.subscriber_id}: churn probability ${pct(c.churn_probability, 1)} (log-odds ${num(c.churn.margin, 2)} from a base of ${num(c.churn.base_value, 2)})`
      : `Subscriber ${c.subscriber_id}: LTV ${num(c.ltv, 2)} (from a base of ${num(c.ltv_model.base_value, 2)})`;
  body.append(switcher, h("p", { "data-explained": c.subscriber_id }, h("a", { href: "#/subscriber/" + c.subscriber_id }, headline)));

  // The ten largest contributions; the rest summed, so the plots still add up to the output.
  const topN = e.contributions.slice(0, 10);
  const rest = e.contributions.slice(10).reduce((s, x) => s + x.contribution, 0);
  const parts = [...topN.map((x) => ({ name: `${x.feature} = ${x.value === null ? "missing" : num(x.value, 2)}`, v: x.contribution })), { name: `${e.contributions.length - topN.length} other features`, v: rest }];

  // Horizontal segments [from, to] on category rows, as thick lines (stacked bars cannot start
  // below zero, and log-odds usually are).
  const segment = (row: number, from: number, to: number, color: string, name: string) => ({
    type: "line",
    name,
    data: [
      [from, row],
      [to, row],
    ],
    symbol: "none",
    lineStyle: { width: 14, color, cap: "butt" },
    tooltip: { show: true, formatter: () => `${name}: ${to - from >= 0 ? "+" : ""}${num(to - from, 3)}` },
  });
  const kUp = "#D55E00";
  const kDown = "#0072B2";

  // Force plot: the features that push the output up (red) end at the output from the left, and
  // those that push it down (blue) start at the output and go right, largest nearest to it.
  const up = parts.filter((p) => p.v > 0).sort((a, b) => b.v - a.v);
  const down = parts.filter((p) => p.v < 0).sort((a, b) => a.v - b.v);
  const force: ReturnType<typeof segment>[] = [];
  let left = e.margin;
  up.forEach((p, k) => {
    force.push(segment(0, left - p.v, left, k % 2 ? "#E69F00" : kUp, p.name));
    left -= p.v;
  });
  let right = e.margin;
  down.forEach((p, k) => {
    force.push(segment(0, right, right - p.v, k % 2 ? "#56B4E9" : kDown, p.name));
    right -= p.v;
  });
  body.append(h("h4", {}, "Force plot"), h("p", { class: "note" }, "Red pushes the prediction up, blue down; they meet at the output. The base value is where the model starts with no information about the subscriber."));
  chart(
    body,
    {
      tooltip: { trigger: "item" },
      grid: grid(8, 8, 8, 8),
      xAxis: { type: "value", scale: true },
      yAxis: { type: "category", data: ["output"], show: false },
      series: [
        ...force,
        {
          type: "scatter",
          name: "output",
          data: [[e.margin, 0]],
          symbol: "diamond",
          symbolSize: 18,
          z: 3,
          itemStyle: { color: "#000000" },
          markLine: { silent: true, symbol: "none", label: { formatter: "base" }, data: [{ xAxis: e.base_value }], lineStyle: { color: "#4d5566", type: "dashed" } },
        },
      ],
    },
    110,
  );

  // Waterfall: from the base value, each contribution in turn, to the output.
  let run = e.base_value;
  const rows = parts.map((p, k) => {
    const start = run;
    run += p.v;
    return segment(k + 1, start, run, p.v >= 0 ? kUp : kDown, p.name);
  });
  const names = ["base value", ...parts.map((p) => p.name), "output"];
  body.append(h("h4", {}, "Waterfall"));
  chart(
    body,
    {
      tooltip: { trigger: "item" },
      grid: grid(8, 16, 8, 8),
      xAxis: { type: "value", scale: true },
      yAxis: { type: "category", data: names, inverse: true },
      series: [
        ...rows,
        {
          type: "scatter",
          name: "value",
          symbol: "diamond",
          symbolSize: 14,
          z: 3,
          itemStyle: { color: "#000000" },
          data: [
            [e.base_value, 0],
            [e.margin, names.length - 1],
          ],
        },
      ],
    },
    names.length * 26 + 24,
  );

  // Decision plot: the path from the base value to the output, smallest contributions first.
  const order = [...e.contributions].reverse();
  let acc = e.base_value;
  const path = [e.base_value, ...order.map((x) => (acc += x.contribution))];
  body.append(h("h4", {}, "Decision plot"));
  chart(
    body,
    {
      tooltip: { trigger: "axis" },
      grid: grid(8, 16, 8, 8),
      xAxis: { type: "value", scale: true },
      yAxis: { type: "category", data: ["base", ...order.map((x) => x.feature)], inverse: false },
      series: [{ type: "line", name: "model output", data: path, symbolSize: 4 }],
    },
    Math.min(640, order.length * 14 + 40),
  );
}
