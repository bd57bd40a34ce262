// Pricing: what price does to conversion and revenue. Price elasticity of trial-to-paid
// conversion per tier, region and year with its interval (GET /v1/insights/pricing,
// docs/insights.md); ARPU and subscribers by tier and plan (semantic queries); and the plan
// advice across the base: how many subscribers would pay less on another plan, and how much
// (GET /v1/insights/plans).

import { column, labels } from "../api";
import { bars, chart, grid } from "../charts";
import { FilterState } from "../filters";
import { minor, money, num } from "../format";
import { kAdviceActions, PlanAdvice } from "../types";
import { Card, fill, h, table } from "../ui";

interface Elasticity {
  tier: string;
  region: string;
  year: number;
  elasticity: number | null;
  standard_error: number | null;
  ci: [number, number] | null;
  trials: number;
  paid: number;
  points: { plan_id: number; price_minor: number; trials: number; paid: number }[];
}

export async function pricingTab(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const v = filters.value;
  const r = filters.range();
  const where = filters.where();
  const elasticity = new Card("elasticity", "Price elasticity of trial-to-paid conversion", {
    wide: true,
    note: "−e is the % change in conversion for a 1% price rise (e > 0: dearer converts less). Bars are intervals; estimates with one price level have none. The region filter picks rows; the plan filter keeps the rows with that plan's prices.",
  });
  const tiers = new Card("arpu-by-tier", "ARPU and subscribers by tier");
  const plans = new Card("subscribers-by-plan", "Active subscribers by plan");
  const advice = new Card("plan-advice-summary", "Plan advice across the base", { note: "Last 3 billing cycles priced under every plan (all plans and regions; the partner filter applies)." });
  const top = new Card("plan-advice-top", "Largest savings on another plan", { wide: true });
  root.append(h("div", { class: "grid" }, elasticity.root, tiers.root, plans.root, advice.root, top.root));

  const advised = api.get<PlanAdvice>("/v1/insights/plans", { limit: 20, action: "cheaper_plan", partner: v.partner });
  const all = api.get<PlanAdvice>("/v1/insights/plans", { limit: 0, partner: v.partner });
  await Promise.all([
    fill(
      elasticity,
      () => api.get<{ elasticities: Elasticity[] }>("/v1/insights/pricing", { ...filters.params(), partner: v.partner }),
      (p) => {
        const rows = p.elasticities.filter((e) => (!v.region || e.region === v.region) && (!v.plan || e.points.some((x) => String(x.plan_id) === v.plan)));
        if (rows.length === 0) return null;
        const name = (e: Elasticity) => `${e.tier} · ${e.region} · ${e.year}`;
        return {
          data: { columns: ["tier", "region", "year", "elasticity", "standard_error", "ci_low", "ci_high", "trials", "paid"], rows: rows.map((e) => [e.tier, e.region, e.year, e.elasticity, e.standard_error, e.ci?.[0] ?? null, e.ci?.[1] ?? null, e.trials, e.paid]) },
          render: (body) => {
            chart(
              body,
              {
                tooltip: { trigger: "item" },
                grid: grid(8, 24, 8, 8),
                xAxis: { type: "value", name: "elasticity", nameLocation: "middle", nameGap: 24 },
                yAxis: { type: "category", data: rows.map(name), inverse: true },
                series: [
                  ...rows.map((e, i) => ({ type: "line", data: e.ci ? [[e.ci[0], i], [e.ci[1], i]] : [], symbol: "none", lineStyle: { width: 8, color: "#56B4E9" }, tooltip: { show: false } })),
                  {
                    type: "scatter",
                    z: 3,
                    symbolSize: 10,
                    itemStyle: { color: "#000000" },
                    data: rows.map((e, i) => [e.elasticity, i]),
                    tooltip: { formatter: (x: { dataIndex: number }) => `${name(rows[x.dataIndex])}: ${num(rows[x.dataIndex].elasticity, 2)} (${num(rows[x.dataIndex].trials)} trials)` },
                    markLine: { silent: true, symbol: "none", data: [{ xAxis: 0 }], lineStyle: { color: "#4d5566" } },
                  },
                ],
              },
              Math.max(160, rows.length * 30 + 48),
            );
          },
        };
      },
    ),
    fill(
      tiers,
      () => api.query({ measures: ["arpu", "active_subscribers"], dimensions: ["tier"], filters: where, timeDimensions: [{ dimension: "time", dateRange: [r.from, r.to] }], order: { arpu: "desc" } }),
      (q) =>
        q.rows.length === 0
          ? null
          : {
              data: q,
              render: (b) =>
                b.append(
                  table(
                    ["Tier", "ARPU", "Active subscribers"],
                    q.rows.map((row) => [String(row[0]), money(Number(row[1])), num(Number(row[2]))]),
                  ),
                ),
            },
    ),
    fill(
      plans,
      () => api.query({ measures: ["active_subscribers"], dimensions: ["plan"], filters: where, timeDimensions: [{ dimension: "time", dateRange: [r.from, r.to] }], order: { active_subscribers: "desc" } }),
      (q) => (q.rows.length === 0 ? null : { data: q, render: (b) => void bars(b, labels(q, "plan").map((p) => "Plan " + p), column(q, "active_subscribers").map((x) => x ?? 0)) }),
    ),
    fill(advice, () => all, (a) => {
      const actions = Object.entries(a.actions).sort((x, y) => y[1] - x[1]);
      if (a.subscribers === 0) return null;
      return {
        data: { columns: ["action", "subscribers"], rows: actions },
        render: (b) => {
          const saving = a.totals.map((t) => minor(t.saving_minor, t.currency)).join(", ");
          b.append(h("p", {}, `${num(a.subscribers)} subscribers priced; they would save ${saving || "nothing"} a cycle in all on the advised plans.`));
          bars(b, actions.map(([k]) => kAdviceActions[k] ?? k), actions.map(([, n]) => n));
        },
      };
    }),
    fill(top, () => advised, (a) =>
      a.advice.length === 0
        ? null
        : {
            data: { columns: ["subscriber_id", "region", "current_plan", "suggested_plan", "saving", "reason"], rows: a.advice.map((x) => [x.subscriber_id, x.region, x.current_plan, x.suggested_plan, x.saving_minor / 100, x.reason]) },
            render: (b) =>
              b.append(
                table(
                  ["Subscriber", "Region", "Plan now", "Better plan", "Saving a cycle", "Why"],
                  a.advice.map((x) => [h("a", { href: "#/subscriber/" + x.subscriber_id }, String(x.subscriber_id)), x.region, String(x.current_plan), String(x.suggested_plan ?? ""), minor(x.saving_minor, x.currency), x.reason]),
                ),
              ),
          },
    ),
  ]);
}
