// tally's dashboards: the app shell. It signs in (an API key at the login form, or an embed
// token in the URL fragment), then routes by the fragment: #/overview, #/subscriber/42, ...
// docs/web.md is the user guide; docs/embedding.md explains tokens and the one-line snippet.

import { disposeCharts } from "./charts";
import { FilterState, filterBar } from "./filters";
import { ApiError, forgetKey, open, opens, Session, storedKey } from "./session";
import { h } from "./ui";
import { abtestTab } from "./views/abtest";
import { agentConsole, stopAgentRefresh } from "./views/agent";
import { funnelTab } from "./views/funnel";
import { geoTab } from "./views/geo";
import { mlTab } from "./views/ml";
import { overview } from "./views/overview";
import { partnerView } from "./views/partner";
import { pricingTab } from "./views/pricing";
import { closeLive, realtimeTab } from "./views/realtime";
import { subscriberPage } from "./views/subscriber";
import { summaryView } from "./views/summary";

interface Tab {
  id: string; // the dashboard name embed tokens use
  title: string;
  roles?: string[]; // only these roles (default: operators and partners)
  /** A tab under the global filters. */
  render?: (root: HTMLElement, filters: FilterState) => Promise<void>;
  /** A view of its own (no global filters), given the rest of the path: #/agent/ID. */
  page?: (root: HTMLElement, s: Session, path: string[]) => Promise<void>;
}

// The analyst tabs, in the seed's order; each one is a dashboard an embed token may open.
const kTabs: Tab[] = [
  { id: "overview", title: "Overview", render: overview },
  { id: "realtime", title: "Real-Time", render: realtimeTab },
  { id: "funnel", title: "Funnel", render: funnelTab },
  { id: "pricing", title: "Pricing", render: pricingTab },
  { id: "abtest", title: "A/B Testing", render: abtestTab },
  // The models' routes are for admins and analysts (docs/api.md).
  { id: "ml", title: "ML Insights", roles: ["admin", "analyst"], render: mlTab },
  { id: "geo", title: "Geographic", render: geoTab },
  { id: "partner", title: "Partner", roles: ["admin", "analyst", "partner"], render: partnerView },
  { id: "agent", title: "Agent console", roles: ["admin", "agent", "partner"], page: agentConsole },
  { id: "summary", title: "Summary", roles: ["admin", "analyst", "partner"], render: summaryView },
];

const app = document.getElementById("app") as HTMLElement;
let session: Session | null = null;
let filters: FilterState | null = null;
let generation = 0; // a newer navigation makes an older render's late results harmless

/** #/view/arg?x=y -> { path: ["view", "arg"], params }. */
function route(): { path: string[]; params: URLSearchParams } {
  const hash = location.hash.replace(/^#\/?/, "");
  const [p, q] = hash.split("?", 2);
  return { path: p.split("/").filter(Boolean), params: new URLSearchParams(q ?? "") };
}

function fatal(message: string, retry = true): void {
  app.replaceChildren(
    h(
      "main",
      { class: "center" },
      h("div", { class: "state error", role: "alert", "data-fatal": "" }, message),
      retry && !session?.embedded ? h("p", {}, h("a", { href: "#/login" }, "Sign in again")) : null,
    ),
  );
}

function login(message?: string): void {
  const input = h("input", { id: "key", type: "password", autocomplete: "off", placeholder: "tly_…", required: true, "aria-describedby": "key-help" });
  const error = h("div", { class: "state error", role: "alert", hidden: !message }, message ?? "");
  const form = h(
    "form",
    { class: "login", "aria-label": "Sign in" },
    h("h1", {}, "tally"),
    h("label", { for: "key" }, "API key"),
    input,
    h("p", { id: "key-help", class: "note" }, "Create one with: tally keys create --data DIR --role analyst. It is kept for this browser tab only."),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      session = await open(input.value.trim(), false);
      const target = home(session);
      if (location.hash === target) void render();
      else location.hash = target;
    } catch (err) {
      error.hidden = false;
      error.textContent = err instanceof ApiError ? err.message : String(err);
    }
  });
  app.replaceChildren(h("main", { class: "center" }, form));
  input.focus();
}

function mayOpen(s: Session, t: Tab): boolean {
  if (s.me.role === "subscriber" || !opens(s, t.id)) return false;
  return !t.roles || t.roles.includes(s.me.role);
}

/** Forgets the key, the session and its filters, and shows the login form. */
function signOut(): void {
  forgetKey();
  session = null;
  filters = null;
  // The hash change shows the login form (showing it here as well would let the render of the
  // hash change replace a form the user has started filling in).
  if (location.hash === "#/login") login();
  else location.hash = "#/login";
}

function home(s: Session): string {
  if (s.me.role === "subscriber") return "#/subscriber/" + s.me.subscriber;
  return "#/" + (kTabs.find((t) => mayOpen(s, t))?.id ?? "subscriber");
}

function nav(s: Session, current: string): HTMLElement {
  const links = kTabs
    .filter((t) => mayOpen(s, t))
    .map((t) => h("a", { href: "#/" + t.id, "aria-current": t.id === current ? "page" : undefined, "data-tab": t.id }, t.title));
  const who = s.me.role + (s.me.partner !== null ? " · partner " + s.me.partner : "") + (s.me.subscriber !== null ? " · subscriber " + s.me.subscriber : "");
  return h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/" }, "tally"),
    h("nav", { "aria-label": "Dashboards" }, ...links),
    h("span", { class: "who", "data-role": s.me.role }, who),
    s.embedded
      ? null
      : h("button", { class: "ghost", type: "button", onclick: (() => signOut()) as EventListener }, "Sign out"),
  );
}

async function render(): Promise<void> {
  const mine = ++generation;
  disposeCharts();
  closeLive();
  stopAgentRefresh();
  filters?.clearListeners();
  if (!session) return login();
  const s = session;
  const { path } = route();
  const view = path[0] ?? "";
  const main = h("main", { id: "view", "data-view": view });
  if (!s.embedded || s.me.role !== "subscriber") app.replaceChildren(nav(s, view), main);
  else app.replaceChildren(main);

  if (view === "subscriber") {
    const id = Number(path[1] ?? s.me.subscriber);
    if (!Number.isInteger(id) || id < 1) return fatal("No subscriber chosen: open #/subscriber/ID.", false);
    await subscriberPage(main, s, id);
    return;
  }
  const tab = kTabs.find((t) => t.id === view);
  if (!tab) {
    location.hash = home(s);
    return;
  }
  if (!opens(s, tab.id)) return fatal(`This ${s.me.via === "token" ? "embed token" : "key"} does not open the ${tab.title} dashboard.`, false);
  if (!mayOpen(s, tab)) return fatal(`The ${tab.title} dashboard is for ${tab.roles ? tab.roles.map((r) => r + "s").join(" and ") : "operators and partners"}.`, false);
  if (tab.page) {
    main.append(h("h1", { class: "tab-title" }, tab.title));
    await tab.page(main, s, path);
    return;
  }
  const renderTab = tab.render as NonNullable<Tab["render"]>;
  // The filters belong to the session they were made for (their queries use its credential).
  if (filters?.session !== s) filters = new FilterState(s);
  const f = filters;
  const body = h("div", { class: "tab-body" });
  const bar = h("div", { class: "filters-slot" });
  main.append(h("h1", { class: "tab-title" }, tab.title), bar, body);
  f.onChange(() => {
    if (mine === generation) void render();
  });
  // The filter bar's choices and the charts load at the same time.
  const filling = filterBar(f).then(
    (form) => bar.replaceChildren(form),
    (e) => bar.replaceChildren(h("div", { class: "state error", role: "alert" }, "Filters: " + (e instanceof ApiError ? e.message : String(e)))),
  );
  await Promise.all([filling, renderTab(body, f)]);
}

/** Opens the session of an embed token found in the fragment (#/subscriber/7?token=...), which
 * browsers never send to a server: it is kept in memory and taken out of the address bar. */
async function useToken(path: string[], token: string): Promise<boolean> {
  history.replaceState(null, "", "#/" + path.join("/"));
  // Nothing of the previous credential's view stays on screen while the token is checked.
  disposeCharts();
  app.replaceChildren(h("main", { class: "center" }, h("div", { class: "state loading", role: "status" }, "Opening…")));
  try {
    session = await open(token, true);
    filters = null;
    return true;
  } catch (e) {
    session = null;
    fatal(e instanceof ApiError ? "This link is not valid: " + e.message : String(e), false);
    return false;
  }
}

async function start(): Promise<void> {
  // Listening first: the login form below (a stored key that is no longer valid) navigates by
  // changing the hash. A new token in the hash replaces the session.
  window.addEventListener("hashchange", () => {
    const { path, params } = route();
    const token = params.get("token");
    if (token) void useToken(path, token).then((ok) => (ok ? render() : undefined));
    else void render();
  });
  window.addEventListener("unhandledrejection", (e) => {
    const reason = e.reason;
    if (reason instanceof ApiError && reason.status === 401) fatal("Your session has ended: " + reason.message);
  });
  const { path, params } = route();
  const token = params.get("token");
  if (token) {
    if (!(await useToken(path, token))) return;
  } else if (path[0] !== "login" && storedKey()) {
    try {
      session = await open(storedKey() as string, false);
    } catch (e) {
      forgetKey();
      return login(e instanceof ApiError ? e.message : String(e));
    }
  }
  if (session && (path.length === 0 || path[0] === "login")) {
    location.hash = home(session); // the hash change renders it
    return;
  }
  await render();
}

void start();
