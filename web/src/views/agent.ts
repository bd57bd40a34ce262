// The agent console: a care agent finds a subscriber (by id, or by MSISDN or name where the role
// sees them) and sees, for the hours up to the newest data, the sessions (those still open
// marked live), dropped calls, complaints and recharges (GET /v1/subscribers/{id}/activity),
// with the balance and unusual charges. Personal data comes masked by the server for the
// caller's role; a partner's agent finds only the partner's subscribers. The activity refreshes
// every 15 seconds while the console is open.

import { ApiError } from "../api";
import { minor, num, period } from "../format";
import { Session } from "../session";
import { Profile } from "../types";
import { Card, fill, h, table } from "../ui";

interface Activity {
  as_of: string | null;
  hours: number;
  sessions: { ts: string; kind: string; duration_s: number | null; bytes: number | null; counterparty: string | null; destination: string | null; roaming: boolean; roaming_country: string | null; tower_id: number | null; live: boolean }[];
  drops: { ts: string; cause: string; tower_id: number | null; session_ref: string | null }[];
  complaints: { ts: string; case_id: string; category: string; channel: string; priority: string; resolution_hours: number | null }[];
  recharges: { ts: string; amount_minor: number; currency: string; channel: string; payment_status: string }[];
  counts: Record<"sessions" | "drops" | "complaints" | "recharges", number>;
}

const kRefreshMs = 15_000;
let refresher: number | undefined;

/** Stops the console's refresh (when another view opens). */
export function stopAgentRefresh(): void {
  if (refresher !== undefined) clearInterval(refresher);
  refresher = undefined;
}

const when = (ts: string) => ts.slice(0, 19).replace("T", " ");
const mb = (bytes: number | null) => (bytes === null ? "" : num(bytes / 1e6, 1) + " MB");

function duration(s: number | null): string {
  if (s === null) return "";
  if (s < 60) return s + " s";
  return Math.floor(s / 60) + " min " + (s % 60) + " s";
}

function searchForm(s: Session, results: Card, initial: string): HTMLElement {
  const input = h("input", { id: "agent-q", type: "search", autocomplete: "off", required: true, value: initial, placeholder: "id, +MSISDN, last digits or name" });
  const form = h(
    "form",
    { class: "filters agent-search", role: "search" },
    h("label", { for: "agent-q" }, "Find a subscriber"),
    input,
    h("button", { type: "submit" }, "Search"),
  );
  const search = (q: string) =>
    fill(results, () => s.api.get<{ subscribers: Profile[] }>("/v1/subscribers", { q, limit: 20 }), (r) =>
      r.subscribers.length === 0
        ? null
        : {
            data: { columns: ["subscriber_id", "msisdn", "name", "partner_id", "plan_id", "status", "city"], rows: r.subscribers.map((p) => [p.subscriber_id, p.msisdn, p.name, p.partner_id, p.plan_id, p.status, p.city]) },
            render: (body) =>
              body.append(
                table(
                  ["Subscriber", "MSISDN", "Name", "Plan", "Status", "City"],
                  r.subscribers.map((p) => [h("a", { href: `#/agent/${p.subscriber_id}`, "data-open": p.subscriber_id }, String(p.subscriber_id)), p.msisdn ?? "", p.name ?? "", "Plan " + p.plan_id, p.status, p.city]),
                ),
              ),
          },
    );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (q) void search(q);
  });
  if (initial) void search(initial);
  return form;
}

export async function agentConsole(root: HTMLElement, s: Session, path: string[]): Promise<void> {
  stopAgentRefresh();
  const results = new Card("agent-results", "Matches", { wide: true });
  const id = Number(path[1]);
  const chosen = Number.isInteger(id) && id > 0 ? id : null;
  root.append(searchForm(s, results, ""), h("div", { class: "grid" }, results.root));
  if (chosen === null) {
    results.empty("Search by subscriber id" + (s.me.role === "agent" || s.me.role === "admin" ? ", MSISDN (or its last digits) or name." : ". Your role sees MSISDNs and names masked."));
    return;
  }
  results.root.remove();
  const base = `/v1/subscribers/${chosen}`;
  const header = h("div", { class: "sub-header", "data-subscriber": chosen }, h("h2", {}, "Subscriber " + chosen));
  const hours = h("select", { id: "agent-hours", "aria-label": "Window" }, ...[24, 72, 168].map((x) => h("option", { value: x }, x === 168 ? "7 days" : x + " hours")));
  hours.value = sessionStorage.getItem("tally.agent.hours") ?? "72";
  const stamp = h("p", { class: "note live-status", role: "status", "data-as-of": "" }, "");
  const sessions = new Card("agent-sessions", "Sessions", { wide: true });
  const drops = new Card("agent-drops", "Dropped calls");
  const complaints = new Card("agent-complaints", "Complaints");
  const recharges = new Card("agent-recharges", "Recharges");
  const balance = new Card("agent-balance", "Balance");
  root.append(
    header,
    h("form", { class: "filters", "aria-label": "Activity window", onsubmit: ((e: Event) => e.preventDefault()) as EventListener }, h("label", {}, "Window", hours), stamp, h("a", { href: `#/subscriber/${chosen}` }, "Open the subscriber page")),
    h("div", { class: "grid" }, sessions.root, drops.root, complaints.root, recharges.root, balance.root),
  );

  const profile = s.api.get<Profile>(base).then(
    (p) => {
      const masked = [p.msisdn, p.name].some((x) => x !== null && /\*|^[A-Z]\.( [A-Z]\.)*$/.test(x));
      header.replaceChildren(
        h("h2", {}, (p.name ?? "Subscriber") + " · " + p.subscriber_id),
        h("p", { class: "note", "data-msisdn": p.msisdn ?? "" }, [p.msisdn, p.imsi ? "IMSI " + p.imsi : null, `plan ${p.plan_id}`, p.billing_type, p.city || p.region, p.status, "partner " + p.partner_id].filter(Boolean).join(" · ")),
        h("p", { class: "note", hidden: !masked }, "Personal data is masked for your role."),
      );
    },
    (e) => header.replaceChildren(h("h2", {}, "Subscriber " + chosen), h("div", { class: "state error", role: "alert" }, e instanceof ApiError ? e.message : String(e))),
  );

  const activity = async (quiet: boolean) => {
    const cards = [sessions, drops, complaints, recharges];
    if (!quiet) for (const c of cards) c.loading();
    let a: Activity;
    try {
      a = await s.api.get<Activity>(base + "/activity", { hours: hours.value, limit: 50 });
    } catch (e) {
      for (const c of cards) c.error(e);
      return;
    }
    stamp.dataset.asOf = a.as_of ?? "";
    stamp.textContent = a.as_of ? `As of ${when(a.as_of)} UTC (the newest data); refreshes every 15 s.` : "No data stored yet.";
    const show = <T>(card: Card, list: T[], total: number, columns: string[], values: (x: T) => unknown[], cells: string[], text: (x: T) => (string | Node)[], empty: string) => {
      if (list.length === 0) return card.empty(empty);
      card.ready({ columns, rows: list.map(values) });
      card.body.append(
        h("p", { class: "note" }, total > list.length ? `The newest ${list.length} of ${total}.` : `${total} in the window.`),
        table(cells, list.map(text)),
      );
    };
    const live = a.sessions.filter((x) => x.live).length;
    show(
      sessions,
      a.sessions,
      a.counts.sessions,
      ["ts", "kind", "duration_s", "bytes", "counterparty", "destination", "roaming", "roaming_country", "tower_id", "live"],
      (x) => [x.ts, x.kind, x.duration_s, x.bytes, x.counterparty, x.destination, x.roaming, x.roaming_country, x.tower_id, x.live],
      ["Started", "Kind", "Length", "Data", "Other party", "Where", ""],
      (x) => [
        when(x.ts),
        x.kind.replace("_", " "),
        duration(x.duration_s),
        mb(x.bytes),
        x.counterparty ?? "",
        x.roaming ? "roaming " + (x.roaming_country ?? "") : x.destination ?? "",
        x.live ? h("span", { class: "badge live", "data-live-session": "" }, "live") : "",
      ],
      "No sessions in this window.",
    );
    sessions.root.dataset.live = String(live);
    show(drops, a.drops, a.counts.drops, ["ts", "cause", "tower_id", "session_ref"], (x) => [x.ts, x.cause, x.tower_id, x.session_ref], ["When", "Cause", "Cell site"], (x) => [when(x.ts), x.cause.replace(/_/g, " "), String(x.tower_id ?? "")], "No dropped calls in this window.");
    show(complaints, a.complaints, a.counts.complaints, ["ts", "case_id", "category", "channel", "priority", "resolution_hours"], (x) => [x.ts, x.case_id, x.category, x.channel, x.priority, x.resolution_hours], ["Opened", "Case", "About", "Channel", "Priority"], (x) => [when(x.ts), x.case_id, x.category.replace(/_/g, " "), x.channel.replace(/_/g, " "), x.priority], "No complaints in this window.");
    show(recharges, a.recharges, a.counts.recharges, ["ts", "amount_minor", "currency", "channel", "payment_status"], (x) => [x.ts, x.amount_minor, x.currency, x.channel, x.payment_status], ["When", "Amount", "Channel", "Payment"], (x) => [when(x.ts), minor(x.amount_minor, x.currency), x.channel.replace(/_/g, " "), h("span", { class: "badge " + x.payment_status }, x.payment_status)], "No recharges in this window.");
  };

  hours.addEventListener("change", () => {
    sessionStorage.setItem("tally.agent.hours", hours.value);
    void activity(false);
  });
  refresher = window.setInterval(() => {
    if (!root.isConnected) return stopAgentRefresh();
    void activity(true);
  }, kRefreshMs);

  await Promise.all([
    profile,
    activity(false),
    fill(balance, () => s.api.get<{ billing_type: string; currency: string; balance_minor: number; open_invoice_minor: number | null; cycle_end: string | null }>(base + "/balance"), (b) => ({
      data: { columns: ["billing_type", "balance_minor", "open_invoice_minor", "cycle_end"], rows: [[b.billing_type, b.balance_minor, b.open_invoice_minor, b.cycle_end]] },
      render: (body) =>
        body.append(
          h("div", { class: "big" }, b.billing_type === "postpaid" ? minor(b.open_invoice_minor ?? 0, b.currency) : minor(b.balance_minor, b.currency)),
          h("p", { class: "note" }, (b.billing_type === "postpaid" ? "open invoice" : "prepaid balance") + (b.cycle_end ? ", cycle ends " + period(b.cycle_end) : "")),
        ),
    })),
  ]);
}
