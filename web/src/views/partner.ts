// The partner view: one partner brand's (MVNO's) business at a glance, for the partner's own
// staff (a partner key or embed token, which the server limits to the partner's rows) and for
// the operator's analysts (who choose the partner in the filters). KPIs against thresholds,
// revenue and subscribers by month, the plan mix, unusual charges across the partner's base and
// the plan advice for it.

import { column, labels, QueryResult } from "../api";
import { bars, series } from "../charts";
import { FilterState } from "../filters";
import { minor, num } from "../format";
import { kAdviceActions, PlanAdvice } from "../types";
import { Card, fill, h, table } from "../ui";
import { fillKpis, kpiMonth, monthLabels, monthly } from "./overview";

interface Flags {
  subscribers: number;
  flags: { subscriber_id: number; cause: string; charge_minor: number; expected_minor: number }[];
}

export async function partnerView(root: HTMLElement, filters: FilterState): Promise<void> {
  const s = filters.session;
  const partner = s.me.role === "partner" ? String(s.me.partner) : filters.value.partner;
  if (!partner) {
    const choose = new Card("partner-choose", "Partner", { wide: true });
    root.append(h("div", { class: "grid" }, choose.root));
    choose.empty("Choose a partner in the filters above to see its view.");
    return;
  }
  // An analyst's partner filter is in filters.where(); a partner key's rows are its own anyway.
  const r = filters.range();
  const where = filters.where();
  const { api } = s;
  const name = partner === "0" ? "Own brand (partner 0)" : "Partner " + partner;
  const kpis = new Card("kpis", name + ": this month against the last", { wide: true });
  const trend = new Card("partner-trend", "Revenue and active subscribers by month");
  const plans = new Card("partner-plans", "Active subscribers by plan");
  // Unusual charges of the KPIs' month: detecting them reads every usage and charge event of
  // the range, so the month keeps the view fast; the Overview's trends cover the longer range.
  const month = kpiMonth(filters);
  const flags = new Card("partner-flags", `Unusual charges, ${month.label}`);
  const advice = new Card("partner-advice", "Plan advice across the base", { note: "Last 3 billing cycles priced under every plan." });
  root.append(h("div", { class: "grid", "data-partner": partner }, kpis.root, trend.root, plans.root, flags.root, advice.root));

  await Promise.all([
    fillKpis(kpis, filters),
    fill(trend, () => monthly(filters, ["revenue", "active_subscribers"]), (q) =>
      q.rows.length === 0
        ? null
        : { data: q, render: (b) => void series(b, monthLabels(filters, q), [{ name: "Revenue", data: column(q, "revenue"), type: "bar" }, { name: "Active subscribers", data: column(q, "active_subscribers"), axis: 1 }]) },
    ),
    fill(
      plans,
      () => api.query({ measures: ["active_subscribers", "arpu"], dimensions: ["plan"], filters: where, timeDimensions: [{ dimension: "time", dateRange: [r.from, r.to] }], order: { active_subscribers: "desc" } }),
      (q: QueryResult) =>
        q.rows.length === 0 ? null : { data: q, render: (b) => void bars(b, labels(q, "plan").map((p) => "Plan " + p), column(q, "active_subscribers").map((v) => v ?? 0)) },
    ),
    fill(flags, () => api.get<Flags>("/v1/insights/anomalies", { from: month.from, to: month.to, partner }), (f) => {
      if (f.flags.length === 0) return null;
      const byCause = new Map<string, { n: number; extra: number }>();
      for (const x of f.flags) {
        const c = byCause.get(x.cause) ?? { n: 0, extra: 0 };
        c.n += 1;
        c.extra += x.charge_minor - x.expected_minor;
        byCause.set(x.cause, c);
      }
      const rows = [...byCause.entries()].sort((a, b) => b[1].n - a[1].n);
      return {
        data: { columns: ["cause", "flags", "above_usual_minor"], rows: rows.map(([c, v]) => [c, v.n, v.extra]) },
        render: (b) =>
          b.append(
            h("p", { class: "note" }, `${num(f.flags.length)} flagged charges among ${num(f.subscribers)} subscribers.`),
            table(["Cause", "Flags", "Above the usual"], rows.map(([c, v]) => [c.replace(/_/g, " "), num(v.n), minor(v.extra)])),
          ),
      };
    }, "No unusual charges in this month."),
    fill(advice, () => api.get<PlanAdvice>("/v1/insights/plans", { limit: 0, partner }), (a) => {
      const actions = Object.entries(a.actions).filter(([, n]) => n > 0);
      if (actions.length === 0) return null;
      return {
        data: { columns: ["action", "subscribers"], rows: actions },
        render: (b) => {
          const saving = a.totals.map((t) => minor(t.saving_minor, t.currency)).join(", ");
          b.append(h("p", { class: "note" }, `${num(a.subscribers)} subscribers priced; moving those advised would save them ${saving || "nothing"} a cycle.`));
          bars(b, actions.map(([k]) => kAdviceActions[k] ?? k), actions.map(([, n]) => n));
        },
      };
    }),
  ]);
}
