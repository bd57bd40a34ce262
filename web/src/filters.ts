// The global filters of the analyst tabs: plan, region, partner and a year range. Every chart
// of every tab reads them through `where()` and `range()`, and redraws when they change.

import { labels, SemanticQuery } from "./api";
import { addDays } from "./format";
import { kFiltersStorage, Session } from "./session";
import { h } from "./ui";

export interface Filters {
  plan: string;
  region: string;
  partner: string;
  yearFrom: number;
  yearTo: number;
}

/** The longest range one query may read (the metrics layer refuses more than 800 days). */
export const kMaxDays = 800;

export class FilterState {
  value: Filters;
  private listeners: (() => void)[] = [];

  constructor(readonly session: Session) {
    const y = Number(session.through.slice(0, 4));
    this.value = { plan: "", region: "", partner: "", yearFrom: y, yearTo: y };
    const saved = sessionStorage.getItem(kFiltersStorage);
    if (saved) {
      try {
        this.value = { ...this.value, ...(JSON.parse(saved) as Partial<Filters>) };
      } catch {
        // ignore a damaged value
      }
    }
  }

  set(patch: Partial<Filters>): void {
    this.value = { ...this.value, ...patch };
    if (this.value.yearFrom > this.value.yearTo) this.value.yearTo = this.value.yearFrom;
    sessionStorage.setItem(kFiltersStorage, JSON.stringify(this.value));
    for (const l of this.listeners) l();
  }

  onChange(l: () => void): void {
    this.listeners.push(l);
  }

  clearListeners(): void {
    this.listeners = [];
  }

  /** The semantic-query filters for plan, region and partner. */
  where(): NonNullable<SemanticQuery["filters"]> {
    const out: NonNullable<SemanticQuery["filters"]> = [];
    const v = this.value;
    if (v.plan) out.push({ member: "plan", operator: "equals", values: [v.plan] });
    if (v.region) out.push({ member: "region", operator: "equals", values: [v.region] });
    if (v.partner) out.push({ member: "partner", operator: "equals", values: [v.partner] });
    return out;
  }

  /** The days the year range covers, up to the newest data and at most kMaxDays long:
   * [first, last], both included, and whether the start was moved to fit the limit. */
  range(): { from: string; to: string; clipped: boolean } {
    const through = this.session.through;
    const end = `${this.value.yearTo}-12-31` < through ? `${this.value.yearTo}-12-31` : through;
    let from = `${this.value.yearFrom}-01-01`;
    const earliest = addDays(end, -(kMaxDays - 1));
    const clipped = from < earliest;
    if (clipped) from = earliest;
    return { from, to: end, clipped };
  }

  /** The query parameters insight routes take for the same filters (from, to). */
  params(): Record<string, string> {
    const r = this.range();
    return { from: r.from, to: r.to };
  }
}

/** The filter bar: selects filled from the data (the values that have subscribers). */
export async function filterBar(state: FilterState): Promise<HTMLElement> {
  const s = state.session;
  const r = state.range();
  const values = async (dimension: string) => {
    const q = await s.api.query({
      measures: ["active_subscribers"],
      dimensions: [dimension],
      timeDimensions: [{ dimension: "time", dateRange: [addDays(s.through, -(kMaxDays - 1)), s.through] }],
      order: { [dimension]: "asc" },
    });
    return labels(q, dimension).filter((x) => x !== "");
  };
  const [plans, regions, partners] = await Promise.all([
    values("plan"),
    values("region"),
    s.me.role === "partner" || s.me.role === "subscriber" ? Promise.resolve([] as string[]) : values("partner"),
  ]);
  const select = (id: string, label: string, all: string, options: string[], key: "plan" | "region" | "partner", name: (v: string) => string) => {
    const sel = h("select", { id, "data-filter": key }, h("option", { value: "" }, all), ...options.map((o) => h("option", { value: o }, name(o))));
    sel.value = state.value[key];
    sel.addEventListener("change", () => state.set({ [key]: sel.value }));
    return h("label", {}, label, sel);
  };
  const through = Number(s.through.slice(0, 4));
  const years: number[] = [];
  for (let y = through - 5; y <= through; ++y) years.push(y);
  const year = (id: string, label: string, key: "yearFrom" | "yearTo") => {
    const sel = h("select", { id, "data-filter": key }, ...years.map((y) => h("option", { value: y }, String(y))));
    sel.value = String(state.value[key]);
    sel.addEventListener("change", () => state.set({ [key]: Number(sel.value) }));
    return h("label", {}, label, sel);
  };
  const bar = h(
    "form",
    { class: "filters", "aria-label": "Filters for every chart", onsubmit: ((e: Event) => e.preventDefault()) as EventListener },
    select("f-plan", "Plan", "All plans", plans, "plan", (p) => "Plan " + p),
    select("f-region", "Region", "All regions", regions, "region", (x) => x),
    partners.length ? select("f-partner", "Partner", "All partners", partners, "partner", (p) => (p === "0" ? "Own brand" : "Partner " + p)) : null,
    year("f-from", "From", "yearFrom"),
    year("f-to", "To", "yearTo"),
    h("span", { class: "range", "data-range": `${r.from}..${r.to}` }, `${r.from} to ${r.to}` + (r.clipped ? " (limited to 800 days)" : "")),
  );
  return bar;
}
