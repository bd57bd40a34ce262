// Overview: the month's KPIs against the month before, colour-coded against the server's
// thresholds (GET /v1/insights/kpis), and revenue, subscribers and usage over time and by
// region and plan. Every number is a semantic query under the global filters.

import { column, labels, QueryResult } from "../api";
import { bars, series } from "../charts";
import { FilterState } from "../filters";
import { addDays, money, num, pct, period, signedPct } from "../format";
import { Card, fill, h } from "../ui";

interface Threshold {
  higher_is_better: boolean;
  on: "value" | "change";
  green: number;
  amber: number;
}

// The cards: catalogue measures, how to show them, and which server threshold colours them
// (logo churn's thresholds apply to the catalogue's churn rate, which is the same ratio).
const kKpis: { measure: string; title: string; show: (v: number) => string; threshold: string }[] = [
  { measure: "mrr", title: "MRR", show: (v) => money(v), threshold: "mrr" },
  { measure: "arpu", title: "ARPU", show: (v) => money(v), threshold: "arpu" },
  { measure: "active_subscribers", title: "Active subscribers", show: (v) => num(v), threshold: "active_subscribers" },
  { measure: "churn_rate", title: "Churn rate", show: (v) => pct(v, 2), threshold: "logo_churn" },
  { measure: "conversion_rate", title: "Conversion rate", show: (v) => pct(v, 2), threshold: "conversion_rate" },
  { measure: "call_drop_rate", title: "Call-drop rate", show: (v) => pct(v, 2), threshold: "call_drop_rate" },
];

// Call drops have no server threshold yet: 2% is the usual network target, 3% is poor.
const kLocalThresholds: Record<string, Threshold> = {
  call_drop_rate: { higher_is_better: false, on: "value", green: 0.02, amber: 0.03 },
};

export function status(t: Threshold | undefined, value: number | null, change: number | null): string {
  if (!t || value === null) return "none";
  const x = t.on === "change" ? change : value;
  if (x === null || !Number.isFinite(x)) return "none";
  if (t.higher_is_better) return x >= t.green ? "green" : x >= t.amber ? "amber" : "red";
  return x <= t.green ? "green" : x <= t.amber ? "amber" : "red";
}

const kStatusText: Record<string, string> = { green: "on target", amber: "watch", red: "off target", none: "" };

/** The newest month is partial unless the data runs to its last day. */
export function partialMonth(filters: FilterState): boolean {
  return addDays(filters.range().to, 1).slice(8, 10) !== "01";
}

/** The month the KPIs report: the newest complete one (or the newest, when none is complete),
 * within the filters' range: its first and last day and its name. */
export function kpiMonth(filters: FilterState): { from: string; to: string; label: string } {
  const r = filters.range();
  let to = r.to;
  if (partialMonth(filters) && to.slice(0, 7) > r.from.slice(0, 7)) to = addDays(to.slice(0, 8) + "01", -1);
  const from = to.slice(0, 8) + "01" < r.from ? r.from : to.slice(0, 8) + "01";
  return { from, to, label: period(from + "T00:00:00Z", "month") };
}

/** Month labels of a monthly query; the newest says when it is partial. */
export function monthLabels(filters: FilterState, q: QueryResult): string[] {
  const r = filters.range();
  const partial = partialMonth(filters);
  return labels(q, "time").map((t, i, all) => period(t, "month") + (partial && i === all.length - 1 ? ` (1–${Number(r.to.slice(8))})` : ""));
}

/** `measures` by month over the filters' range, under their plan, region and partner. */
export function monthly(filters: FilterState, measures: string[]): Promise<QueryResult> {
  const r = filters.range();
  return filters.session.api.query({ measures, filters: filters.where(), timeDimensions: [{ dimension: "time", granularity: "month", dateRange: [r.from, r.to] }] });
}

/** The server's KPI thresholds (GET /v1/insights/kpis), with the local ones for measures it has none for. */
export function kpiThresholds(filters: FilterState): Promise<Record<string, Threshold>> {
  const r = filters.range();
  return filters.session.api
    .get<{ thresholds: Record<string, Threshold> }>("/v1/insights/kpis", { from: r.from, to: r.to, only: "thresholds" })
    .then((k) => ({ ...kLocalThresholds, ...k.thresholds }))
    .catch(() => kLocalThresholds);
}

/**
 * Fills `kpis` with the KPI tiles: the newest complete month against the one before, each
 * colour-coded against its threshold and with its status in words. The Overview, Partner and
 * Summary views share it.
 */
export function fillKpis(kpis: Card, filters: FilterState, thresholds = kpiThresholds(filters)): Promise<void> {
  const r = filters.range();
  // The KPIs compare the newest complete month with the one before.
  const partial = partialMonth(filters);
  return fill(
    kpis,
    async () => [await monthly(filters, kKpis.map((k) => k.measure)), await thresholds] as const,
    ([q, t]) => {
      if (q.rows.length === 0) return null;
      return {
        data: q,
        render: (body) => {
          const last = partial && q.rows.length >= 2 ? q.rows.length - 2 : q.rows.length - 1;
          const cards = kKpis.map((k) => {
            const values = column(q, k.measure);
            const value = values[last];
            const previous = last > 0 ? values[last - 1] : null;
            const change = value !== null && previous ? (value - previous) / Math.abs(previous) : null;
            const st = status(t[k.threshold], value, change);
            return h(
              "div",
              { class: "kpi " + st, "data-kpi": k.measure, "data-status": st },
              h("div", { class: "kpi-title" }, k.title),
              h("div", { class: "kpi-value" }, value === null ? "–" : k.show(value)),
              h("div", { class: "kpi-change" }, change === null ? "" : signedPct(change) + " vs " + period(String(q.rows[last - 1][0]), "month")),
              h("div", { class: "kpi-status" }, kStatusText[st]),
            );
          });
          const month =
            period(String(q.rows[last][0]), "month") +
            (last < q.rows.length - 1 ? ", the newest complete month" : partial ? ` (to ${r.to}, the newest data)` : "");
          body.append(h("p", { class: "note" }, "Month: " + month), h("div", { class: "kpis" }, ...cards));
        },
      };
    },
  );
}

export async function overview(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const r = filters.range();
  const where = filters.where();
  const byDim = (measures: string[], dimension: string) =>
    api.query({ measures, dimensions: [dimension], filters: where, timeDimensions: [{ dimension: "time", dateRange: [r.from, r.to] }], order: { [measures[0]]: "desc" } });

  const kpis = new Card("kpis", "This month against the last", { wide: true });
  const revenue = new Card("revenue", "Revenue and ARPU by month");
  const subs = new Card("subscribers", "Active subscribers and churn by month");
  const usage = new Card("usage", "Data and voice by month");
  const regions = new Card("revenue-by-region", "Revenue by region");
  const plans = new Card("revenue-by-plan", "Revenue by plan");
  root.append(h("div", { class: "grid" }, kpis.root, revenue.root, subs.root, usage.root, regions.root, plans.root));
  const months = (q: QueryResult) => monthLabels(filters, q);
  const monthlyQ = (measures: string[]) => monthly(filters, measures);
  await Promise.all([
    fillKpis(kpis, filters),
    fill(revenue, () => monthlyQ(["revenue", "arpu"]), (q) =>
      q.rows.length === 0 ? null : { data: q, render: (b) => void series(b, months(q), [{ name: "Revenue", data: column(q, "revenue"), type: "bar" }, { name: "ARPU", data: column(q, "arpu"), axis: 1 }]) },
    ),
    fill(subs, () => monthlyQ(["active_subscribers", "churn_rate"]), (q) =>
      q.rows.length === 0 ? null : { data: q, render: (b) => void series(b, months(q), [{ name: "Active subscribers", data: column(q, "active_subscribers"), type: "bar" }, { name: "Churn rate", data: column(q, "churn_rate"), axis: 1 }], { percent: [1] }) },
    ),
    fill(usage, () => monthlyQ(["data_gb", "voice_minutes"]), (q) =>
      q.rows.length === 0 ? null : { data: q, render: (b) => void series(b, months(q), [{ name: "Data (GB)", data: column(q, "data_gb"), type: "bar" }, { name: "Voice minutes", data: column(q, "voice_minutes"), axis: 1 }]) },
    ),
    fill(regions, () => byDim(["revenue"], "region"), (q) =>
      q.rows.length === 0 ? null : { data: q, render: (b) => void bars(b, labels(q, "region"), column(q, "revenue").map((v) => v ?? 0)) },
    ),
    fill(plans, () => byDim(["revenue"], "plan"), (q) =>
      q.rows.length === 0 ? null : { data: q, render: (b) => void bars(b, labels(q, "plan").map((p) => "Plan " + p), column(q, "revenue").map((v) => v ?? 0)) },
    ),
  ]);
}
