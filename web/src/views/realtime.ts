// Real-Time: the live stream (GET /v1/live, server-sent events, docs/api.md). Per-second
// counters of what the ingest pipeline has just stored (sessions, errors, conversions, usage,
// ingest rows), the last 60 seconds' totals, and 5-minute aggregates up to the newest event.
// The partner filter cuts both; plan and region cut the 5-minute aggregates only, because the
// server keeps per-second counters per partner.

import { column, labels, QueryResult } from "../api";
import { series } from "../charts";
import { FilterState } from "../filters";
import { num, period } from "../format";
import { Card, h } from "../ui";

interface Second {
  ts: string;
  sessions: number;
  errors: number;
  conversions: number;
  signups: number;
  usage_events: number;
  data_sessions: number;
  recharges: number;
  call_drops: number;
  ingest_rows: number | null;
}

const kWindow = 300; // seconds on the per-second chart
const kTiles: { key: keyof Second; title: string }[] = [
  { key: "sessions", title: "Sessions" },
  { key: "conversions", title: "Conversions" },
  { key: "errors", title: "App errors" },
  { key: "usage_events", title: "Usage events" },
  { key: "recharges", title: "Recharges" },
  { key: "ingest_rows", title: "Events ingested" },
];

let open: EventSource | null = null;

/** Closes the stream of a Real-Time tab that is no longer shown. */
export function closeLive(): void {
  open?.close();
  open = null;
}

export async function realtimeTab(root: HTMLElement, filters: FilterState): Promise<void> {
  closeLive();
  const { api } = filters.session;
  const status = h("p", { class: "live-status", role: "status", "data-live": "connecting" }, "Connecting to the live stream…");
  const tiles = new Card("live-tiles", "The last 60 seconds", { wide: true, note: filters.value.plan || filters.value.region ? "Per-second counters are per partner: the plan and region filters apply to the 5-minute chart only." : undefined });
  const perSecond = new Card("live-seconds", "Per second, last 5 minutes", { wide: true });
  const fiveMinutes = new Card("live-five-minutes", "5-minute aggregates, last hour of data", { wide: true });
  root.append(status, h("div", { class: "grid" }, tiles.root, perSecond.root, fiveMinutes.root));

  const seconds: Second[] = [];
  let lineChart: ReturnType<typeof series> | null = null;
  const tileValues = new Map<string, HTMLElement>();

  const drawSeconds = () => {
    const recent = seconds.slice(-kWindow);
    const last60 = seconds.slice(-60);
    const sum = (k: keyof Second) => last60.reduce((s, x) => s + (typeof x[k] === "number" ? (x[k] as number) : 0), 0);
    const data = { columns: ["ts", ...kTiles.map((t) => t.key)], rows: recent.map((s) => [s.ts, ...kTiles.map((t) => s[t.key])]) };
    if (tiles.root.dataset.state !== "ready") {
      tiles.ready(data);
      tiles.body.append(
        h(
          "div",
          { class: "kpis" },
          ...kTiles.map((t) => {
            const v = h("div", { class: "kpi-value", "data-live-total": t.key }, "0");
            tileValues.set(t.key, v);
            return h("div", { class: "kpi" }, h("div", { class: "kpi-title" }, t.title), v);
          }),
        ),
      );
    }
    for (const t of kTiles) {
      const hidden = t.key === "ingest_rows" && last60.some((s) => s.ingest_rows === null);
      (tileValues.get(t.key) as HTMLElement).textContent = hidden ? "–" : num(sum(t.key));
    }
    tiles.root.dataset.rows = String(last60.length);
    const x = recent.map((s) => s.ts.slice(11, 19));
    const lines = (["sessions", "conversions", "errors", "usage_events"] as const).map((k) => ({ name: k.replace("_", " "), data: recent.map((s) => s[k]) }));
    if (!lineChart) {
      perSecond.ready(data);
      lineChart = series(perSecond.body, x, lines, { height: 240 });
    } else {
      lineChart.setOption({ xAxis: { data: x }, series: lines.map((l) => ({ data: l.data })) });
      perSecond.root.dataset.rows = String(recent.length);
    }
  };

  const drawFive = (q: QueryResult) => {
    if (q.rows.length === 0) return fiveMinutes.empty("No events in the last hour of data.");
    fiveMinutes.ready(q);
    const x = labels(q, "time").map((t) => period(t, "hour").slice(5));
    series(fiveMinutes.body, x, [
      { name: "Sessions", data: column(q, "sessions") },
      { name: "Conversions", data: column(q, "conversions") },
      { name: "App errors", data: column(q, "app_errors") },
      { name: "Usage events", data: column(q, "usage_events"), type: "bar", axis: 1 },
    ]);
  };

  const v = filters.value;
  const source = api.events("/v1/live", { history: kWindow, window: 60, plan: v.plan, region: v.region, partner: v.partner });
  open = source;
  const add = (s: Second) => {
    seconds.push(s);
    if (seconds.length > kWindow) seconds.splice(0, seconds.length - kWindow);
  };
  source.addEventListener("history", (e) => {
    for (const s of JSON.parse((e as MessageEvent).data) as Second[]) add(s);
    drawSeconds();
  });
  source.addEventListener("second", (e) => {
    const s = JSON.parse((e as MessageEvent).data) as Second;
    add(s);
    drawSeconds();
    status.dataset.live = "open";
    status.textContent = "Live · updated " + s.ts.slice(11, 19) + " UTC";
  });
  source.addEventListener("five_minute", (e) => {
    fiveMinutes.body.replaceChildren();
    drawFive(JSON.parse((e as MessageEvent).data) as QueryResult);
  });
  source.addEventListener("end", (e) => {
    const reason = (JSON.parse((e as MessageEvent).data) as { reason: string }).reason;
    status.textContent = "The stream ended (" + reason + "); reconnecting…";
  });
  source.addEventListener("open", () => {
    status.dataset.live = "open";
    status.textContent = "Live";
  });
  source.addEventListener("error", () => {
    status.dataset.live = "reconnecting";
    status.textContent = "The live stream was interrupted; reconnecting…";
  });
}
