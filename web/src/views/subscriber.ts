// The subscriber page: what a subscriber sees of their own account in the operator's app (the
// telecom pattern's "usage trends, recommendations, unusual charges"). Mobile-first: one column
// on a phone. Agents and partners open it for one subscriber; an embed token for one subscriber
// opens it for that subscriber only (the server answers 404 for any other).

import { column, labels, QueryResult } from "../api";
import { series } from "../charts";
import { addDays, minor, num, period } from "../format";
import { Session } from "../session";
import { Profile } from "../types";
import { Card, fill, h } from "../ui";

interface Balance {
  plan_id: number;
  billing_type: string;
  currency: string;
  balance_minor: number;
  cycle_start: string | null;
  cycle_end: string | null;
  bundles: { data_mb_left: number; voice_min_left: number; sms_left: number };
  open_invoice_minor: number | null;
}

interface Flag {
  cause: string;
  start: string;
  end: string;
  days: number;
  charge_minor: number;
  expected_minor: number;
  reason: string;
}

interface Advice {
  as_of: string;
  advice: { action: string; current_plan: number; suggested_plan: number | null; saving_minor: number; currency: string; reason: string }[];
}

const kCause: Record<string, string> = {
  roaming: "Roaming",
  premium_sms: "Premium SMS",
  overage: "Over the bundle",
  double_charge: "Charged twice",
};

const kAction: Record<string, string> = {
  cheaper_plan: "A cheaper plan fits you",
  bigger_bundle: "A bigger bundle would cost less",
  ahead_of_growth: "Your usage is growing",
  upsell: "You use most of your bundle",
  stay: "Your plan suits you",
};

function left(v: number, unit: string): string {
  return v < 0 ? "unlimited" : num(v) + " " + unit;
}

export async function subscriberPage(root: HTMLElement, s: Session, id: number): Promise<void> {
  const { api } = s;
  const base = `/v1/subscribers/${id}`;
  const header = h("div", { class: "sub-header", "data-subscriber": id }, h("h2", {}, "Subscriber " + id));
  const bill = new Card("bill", "Your bill so far");
  const trend = new Card("usage-trend", "Usage, last 90 days", { wide: true });
  const flags = new Card("flags", "Unusual charges");
  const advice = new Card("plan-advice", "Plan suggestion");
  root.append(header, h("div", { class: "grid sub" }, bill.root, advice.root, trend.root, flags.root));

  const profile = api.get<Profile>(base).then(
    (p) => {
      header.replaceChildren(
        h("h2", {}, p.name ?? "Subscriber " + id),
        h("p", { class: "note" }, [p.msisdn, `plan ${p.plan_id}`, p.billing_type, p.city || p.region, p.status].filter(Boolean).join(" · ")),
      );
    },
    (e) => {
      header.replaceChildren(h("h2", {}, "Subscriber " + id), h("div", { class: "state error", role: "alert" }, String(e.message ?? e)));
    },
  );

  const to = s.through;
  const from = addDays(to, -89);
  await Promise.all([
    profile,
    fill(
      bill,
      async () => {
        const b = await api.get<Balance>(base + "/balance");
        // What the cycle has cost so far: the revenue measure (fees, usage and premium charges)
        // from the cycle's first day to the newest data.
        const since = b.cycle_start && b.cycle_start <= to ? b.cycle_start : addDays(to, -29);
        const spent = await api.get<QueryResult>(base + "/summary", { from: since, to });
        return { b, since, charged: column(spent, "revenue")[0] ?? 0 };
      },
      ({ b, since, charged }) => ({
      data: {
        columns: ["billing_type", "balance", "cycle_start", "cycle_end", "charged_since", "charged", "data_mb_left", "voice_min_left", "sms_left", "open_invoice"],
        rows: [[b.billing_type, b.balance_minor / 100, b.cycle_start, b.cycle_end, since, charged, b.bundles.data_mb_left, b.bundles.voice_min_left, b.bundles.sms_left, b.open_invoice_minor === null ? null : b.open_invoice_minor / 100]],
      },
      render: (body) => {
        const amount = b.billing_type === "postpaid" ? minor(b.open_invoice_minor ?? 0, b.currency) : minor(b.balance_minor, b.currency);
        body.append(
          h("div", { class: "big", "data-amount": amount }, amount),
          h("p", { class: "note" }, b.billing_type === "postpaid" ? "on the open invoice" : "prepaid balance"),
          h("p", { "data-charged": charged }, `Charged since ${since}: ${minor(Math.round(charged * 100), b.currency)}`),
          h("p", { class: "note" }, b.cycle_start ? `Cycle ${b.cycle_start} to ${b.cycle_end}` : "No open cycle"),
          h("ul", { class: "bundles" }, h("li", {}, "Data left: " + left(b.bundles.data_mb_left, "MB")), h("li", {}, "Voice left: " + left(b.bundles.voice_min_left, "min")), h("li", {}, "SMS left: " + left(b.bundles.sms_left, ""))),
        );
      },
    })),
    fill(trend, () => api.get<QueryResult>(base + "/usage", { from, to, granularity: "week" }), (q) =>
      q.rows.length === 0
        ? null
        : {
            data: q,
            render: (body) =>
              void series(body, labels(q, "time").map((t) => period(t, "day")), [
                { name: "Data (GB)", data: column(q, "data_gb"), type: "bar" },
                { name: "Voice minutes", data: column(q, "voice_minutes"), axis: 1 },
              ]),
          },
    ),
    fill(flags, () => api.get<{ flags: Flag[] }>(base + "/anomalies", { from, to }), (f) =>
      f.flags.length === 0
        ? null
        : {
            data: { columns: ["cause", "start", "end", "charge", "usual", "reason"], rows: f.flags.map((x) => [x.cause, x.start, x.end, x.charge_minor / 100, x.expected_minor / 100, x.reason]) },
            render: (body) =>
              body.append(
                h("ul", { class: "flags" }, ...f.flags.slice(-8).reverse().map((x) => h("li", { "data-cause": x.cause }, h("strong", {}, kCause[x.cause] ?? x.cause), " " + period(x.start) + ": " + minor(x.charge_minor), h("p", { class: "note" }, x.reason)))),
              ),
          },
    ),
    fill(advice, () => api.get<Advice>(base + "/plan-advice"), (a) =>
      a.advice.length === 0
        ? null
        : {
            data: { columns: ["action", "current_plan", "suggested_plan", "saving", "reason"], rows: a.advice.map((x) => [x.action, x.current_plan, x.suggested_plan, x.saving_minor / 100, x.reason]) },
            render: (body) => {
              const x = a.advice[0];
              body.append(
                h("div", { class: "advice " + x.action, "data-action": x.action }, h("strong", {}, kAction[x.action] ?? x.action)),
                h("div", { class: "big" }, x.saving_minor > 0 ? "Save " + minor(x.saving_minor, x.currency) + " a cycle" : ""),
                h("p", {}, x.reason),
              );
            },
          },
    ),
  ]);
}
