// The executive summary: the seed's "export key findings". The KPIs against their thresholds,
// the findings written out as sentences (every number from the API under the global filters),
// and the two trend charts, laid out to print on A4: "Print or save as PDF" opens the browser's
// print dialog, whose PDF printer saves it; app.css hides the navigation and controls in print.

import { Api, column, labels, QueryResult } from "../api";
import { series } from "../charts";
import { FilterState } from "../filters";
import { minor, money, num, pct, period, signedPct } from "../format";
import { PlanAdvice } from "../types";
import { Card, h } from "../ui";
import { fillKpis, kpiMonth, monthLabels, monthly, partialMonth } from "./overview";

interface Elasticity {
  tier: string;
  region: string;
  year: number;
  elasticity: number | null;
  ci: [number, number] | null;
}

interface Experiment {
  experiment: string;
  units: number;
}

interface Comparison {
  metric: string;
  variant: string;
  frequentist: { rel_lift: number; p_value: number; ci_rel: [number, number] };
  p_holm: number;
}

interface Finding {
  topic: string;
  text: string;
}

/** The index of the newest complete month of a monthly result, and the one before it. */
function lastTwo(filters: FilterState, q: QueryResult): [number, number] | null {
  const last = partialMonth(filters) && q.rows.length >= 2 ? q.rows.length - 2 : q.rows.length - 1;
  return last >= 1 ? [last, last - 1] : null;
}

const change = (now: number | null, before: number | null) => (now !== null && before ? (now - before) / Math.abs(before) : null);

async function revenueFindings(filters: FilterState): Promise<Finding[]> {
  const q = await monthly(filters, ["revenue", "active_subscribers", "churn_rate", "arpu"]);
  const idx = lastTwo(filters, q);
  if (!idx) return [];
  const [i, j] = idx;
  const month = period(String(q.rows[i][0]), "month");
  const before = period(String(q.rows[j][0]), "month");
  const rev = column(q, "revenue");
  const subs = column(q, "active_subscribers");
  const churn = column(q, "churn_rate");
  const arpu = column(q, "arpu");
  return [
    { topic: "revenue", text: `Revenue in ${month} was ${money(rev[i])}, ${signedPct(change(rev[i], rev[j]))} on ${before}; ARPU ${money(arpu[i])} (${signedPct(change(arpu[i], arpu[j]))}).` },
    { topic: "subscribers", text: `${num(subs[i])} subscribers were active in ${month} (${signedPct(change(subs[i], subs[j]))}); the churn rate was ${pct(churn[i], 2)} against ${pct(churn[j], 2)} in ${before}.` },
  ];
}

async function regionFindings(filters: FilterState): Promise<Finding[]> {
  const r = filters.range();
  const q = await filters.session.api.query({ measures: ["revenue"], dimensions: ["region"], filters: filters.where(), timeDimensions: [{ dimension: "time", granularity: "month", dateRange: [r.from, r.to] }], order: { time: "asc" } });
  const months = [...new Set(labels(q, "time"))];
  const last = partialMonth(filters) && months.length >= 2 ? months.length - 2 : months.length - 1;
  if (last < 1) return [];
  const region = labels(q, "region");
  const time = labels(q, "time");
  const revenue = column(q, "revenue");
  const at = (m: string) => new Map(region.map((g, k) => [g, time[k] === m ? revenue[k] : undefined] as const).filter(([, v]) => v !== undefined));
  const now = at(months[last]);
  const before = at(months[last - 1]);
  const changes = [...now.entries()].map(([g, v]) => ({ g, c: change(v ?? null, before.get(g) ?? null) })).filter((x) => x.c !== null) as { g: string; c: number }[];
  if (changes.length < 2) return [];
  changes.sort((a, b) => b.c - a.c);
  const best = changes[0];
  const worst = changes[changes.length - 1];
  const month = period(months[last], "month");
  if (best.c === worst.c) return [{ topic: "regions", text: `By region, revenue changed alike everywhere in ${month} (${signedPct(best.c)}).` }];
  return [{ topic: "regions", text: `By region, revenue in ${month} against the month before did best in ${best.g} (${signedPct(best.c)}) and worst in ${worst.g} (${signedPct(worst.c)}).` }];
}

async function pricingFinding(api: Api, filters: FilterState): Promise<Finding[]> {
  const p = await api.get<{ elasticities: Elasticity[] }>("/v1/insights/pricing", { ...filters.params(), partner: filters.value.partner });
  // Only estimates whose 95% interval excludes zero say anything about price sensitivity.
  const known = p.elasticities.filter((e) => e.elasticity !== null && e.ci !== null && e.ci[0] > 0);
  if (known.length === 0) {
    return [{ topic: "pricing", text: "No tier's price elasticity is known precisely enough to act on: every 95% interval includes zero (the Pricing tab shows them)." }];
  }
  const year = Math.max(...known.map((e) => e.year));
  const e = known.filter((x) => x.year === year).sort((a, b) => (b.elasticity as number) - (a.elasticity as number))[0];
  const ci = e.ci as [number, number];
  return [{ topic: "pricing", text: `Most price-sensitive in ${year}: the ${e.tier} tier in ${e.region}, elasticity ${(e.elasticity as number).toFixed(2)} (95% interval ${ci[0].toFixed(2)} to ${ci[1].toFixed(2)}): a 1% price rise loses about ${(e.elasticity as number).toFixed(1)}% of its conversions.` }];
}

async function experimentFindings(api: Api, filters: FilterState): Promise<Finding[]> {
  const r = filters.range();
  const partner = filters.value.partner;
  const list = await api.get<{ experiments: Experiment[] }>("/v1/insights/experiments", { from: r.from, to: r.to, partner });
  const reports = await Promise.all(
    list.experiments.slice(0, 4).map((x) =>
      api.get<{ experiment: string; comparisons: Comparison[]; srm: { mismatch: boolean } }>("/v1/insights/experiments/" + encodeURIComponent(x.experiment), { from: r.from, to: r.to, partner }),
    ),
  );
  return reports.map((rep) => {
    if (rep.srm.mismatch) return { topic: "experiments", text: `Experiment ${rep.experiment}: sample ratio mismatch; its results are not to be trusted until that is explained.` };
    const significant = rep.comparisons.filter((c) => c.p_holm < 0.05);
    if (significant.length === 0) return { topic: "experiments", text: `Experiment ${rep.experiment}: no metric differs significantly between the arms (after Holm's correction).` };
    const c = significant.sort((a, b) => a.p_holm - b.p_holm)[0];
    const f = c.frequentist;
    return { topic: "experiments", text: `Experiment ${rep.experiment}: ${c.variant} changes ${c.metric} by ${signedPct(f.rel_lift)} (95% interval ${signedPct(f.ci_rel[0])} to ${signedPct(f.ci_rel[1])}, Holm-adjusted p = ${c.p_holm < 0.001 ? "< 0.001" : c.p_holm.toFixed(3)}).` };
  });
}

async function baseFindings(api: Api, filters: FilterState): Promise<Finding[]> {
  const partner = filters.value.partner;
  // The unusual charges of the KPIs' month (detecting them reads every event of the range).
  const month = kpiMonth(filters);
  const [flags, advice] = await Promise.all([
    api.get<{ subscribers: number; flags: { charge_minor: number; expected_minor: number }[] }>("/v1/insights/anomalies", { from: month.from, to: month.to, partner }),
    api.get<PlanAdvice>("/v1/insights/plans", { limit: 0, partner }),
  ]);
  const out: Finding[] = [];
  const extra = flags.flags.reduce((sum, f) => sum + f.charge_minor - f.expected_minor, 0);
  out.push({ topic: "unusual charges", text: `${num(flags.flags.length)} unusual charges were flagged in ${month.label}, ${minor(extra)} above the subscribers' usual.` });
  const cheaper = (advice.actions.cheaper_plan ?? 0) + (advice.actions.bigger_bundle ?? 0);
  const saving = advice.totals.map((t) => minor(t.saving_minor, t.currency)).join(", ");
  out.push({ topic: "plan advice", text: `${num(cheaper)} of ${num(advice.subscribers)} subscribers would pay less on another plan or bundle (${saving || "nothing"} a cycle in all); ${num(advice.actions.upsell ?? 0)} are upsell candidates.` });
  return out;
}

export async function summaryView(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const r = filters.range();
  const v = filters.value;
  const scope = [v.partner ? (v.partner === "0" ? "own brand" : "partner " + v.partner) : filters.session.me.partner !== null ? "partner " + filters.session.me.partner : "all partners", v.plan ? "plan " + v.plan : "all plans", v.region || "all regions"].join(", ");
  const print = h("button", { type: "button", "data-print": "" }, "Print or save as PDF");
  print.addEventListener("click", () => window.print());
  const kpis = new Card("kpis", "Key performance indicators", { wide: true });
  const findings = new Card("findings", "Key findings", { wide: true });
  const revenue = new Card("summary-revenue", "Revenue by month");
  const subs = new Card("summary-subscribers", "Active subscribers by month");
  root.append(
    h("div", { class: "summary-head" }, h("p", { class: "note", "data-scope": scope }, `${r.from} to ${r.to} · ${scope} · prepared ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`), print),
    h("div", { class: "grid summary" }, kpis.root, findings.root, revenue.root, subs.root),
  );

  findings.loading();
  const parts = await Promise.all([
    fillKpis(kpis, filters),
    // Each source is asked on its own: one that fails leaves its findings out, and says so.
    ...[revenueFindings(filters), regionFindings(filters), pricingFinding(api, filters), experimentFindings(api, filters), baseFindings(api, filters)].map((p) =>
      p.catch((e) => [{ topic: "error", text: "Not available: " + (e instanceof Error ? e.message : String(e)) }] as Finding[]),
    ),
    monthly(filters, ["revenue", "active_subscribers"]).then(
      (q) => {
        if (q.rows.length === 0) {
          revenue.empty();
          subs.empty();
          return;
        }
        revenue.ready(q);
        subs.ready(q);
        series(revenue.body, monthLabels(filters, q), [{ name: "Revenue", data: column(q, "revenue"), type: "bar" }], { height: 220 });
        series(subs.body, monthLabels(filters, q), [{ name: "Active subscribers", data: column(q, "active_subscribers") }], { height: 220 });
      },
      (e) => {
        revenue.error(e);
        subs.error(e);
      },
    ),
  ]);
  const list = parts.filter((p): p is Finding[] => Array.isArray(p)).flat();
  if (list.length === 0) return findings.empty("No findings for these filters.");
  findings.ready({ columns: ["topic", "finding"], rows: list.map((f) => [f.topic, f.text]) });
  findings.body.append(h("ul", { class: "findings" }, ...list.map((f) => h("li", { "data-topic": f.topic }, f.text))));
}
