// The dashboards' first-render benchmark (make bench; docs/web.md, bench/README.md):
//
//   node web/tests/first_render.mjs --tally build/tally --out bench/results/web.json
//        [--subscribers 2000 --days 120 --runs 10 --tmp DIR]
//
// Makes the demo world (the same size as `make demo`), loads it through the ledger, starts
// `tally serve`, and opens the Overview and the subscriber page in headless chromium, each in a
// fresh browser context (no browser cache). "First render" is the time from the start of the
// navigation to every card of the view showing its data (no card loading), read from the page's
// own clock. The peer in the same run is the API time: the span of the page's /v1 requests as
// the browser saw them (Resource Timing), so render minus API is what the page itself costs.
// The first Overview load after the server starts finds the metrics cache empty (cold); later
// loads hit it (warm). Every subscriber page load is a different subscriber. Every other view is
// measured too: its first load and three after it.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith("--") ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const tally = args.tally;
const out = args.out;
if (!tally || !out) {
  console.error("usage: node web/tests/first_render.mjs --tally BIN --out FILE [--subscribers N --days N --runs N --tmp DIR]");
  process.exit(2);
}
const subscribers = Number(args.subscribers ?? 2000);
const days = Number(args.days ?? 120);
const runs = Number(args.runs ?? 10);
const tmp = args.tmp ?? "/tmp/tally-web-bench";

const run = (...a) => execFileSync(tally, a, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });
const t0 = Date.now();
run("generate", "--out", tmp + "/world", "--subscribers", String(subscribers), "--days", String(days));
run("load", "--data", tmp + "/store", tmp + "/world", "--ledger", "--quiet");
const loadSeconds = (Date.now() - t0) / 1000;
const key = JSON.parse(run("keys", "create", "--data", tmp + "/store", "--role", "admin", "--json")).key;

const server = spawn(tally, ["serve", "--data", tmp + "/store", "--port", "0"], {
  stdio: ["ignore", "ignore", "pipe"],
  env: { ...process.env, TALLY_SERVE_ACCESS_LOG: "off" },
});
const base = await new Promise((resolve, reject) => {
  let err = "";
  server.stderr.on("data", (c) => {
    err += c;
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
    if (m) resolve(m[1]);
  });
  server.on("exit", (code) => reject(new Error(`tally serve exited (${code}): ${err}`)));
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// One load of `hash` in a fresh context: { render_ms, api_ms, requests }.
async function load(hash, as = key) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((k) => sessionStorage.setItem("tally.key", k), as);
  const page = await context.newPage();
  await page.goto(base + "/" + hash);
  await page.waitForFunction(
    () => document.querySelectorAll("[data-card]").length > 0 && document.querySelectorAll('[data-card][data-state="loading"]').length === 0,
    null,
    { timeout: 120_000, polling: 10 },
  );
  const m = await page.evaluate(() => {
    const api = performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/"));
    const errors = document.querySelectorAll('[data-card][data-state="error"]').length;
    return {
      render_ms: performance.now(),
      api_ms: api.length ? Math.max(...api.map((e) => e.responseEnd)) - Math.min(...api.map((e) => e.startTime)) : 0,
      requests: api.length,
      errors,
    };
  });
  await context.close();
  if (m.errors) throw new Error(`${hash}: ${m.errors} card(s) failed`);
  return m;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const summary = (samples) => ({
  runs: samples.length,
  render_ms_p50: +pct(samples.map((s) => s.render_ms), 50).toFixed(1),
  render_ms_p95: +pct(samples.map((s) => s.render_ms), 95).toFixed(1),
  api_ms_p50: +pct(samples.map((s) => s.api_ms), 50).toFixed(1),
  requests: samples[0].requests,
});

const cold = await load("#/overview");
const warm = [];
for (let i = 0; i < runs; ++i) warm.push(await load("#/overview"));
const plans = await (await fetch(base + "/v1/insights/plans?limit=" + runs, { headers: { Authorization: "Bearer " + key } })).json();
const subs = [];
for (const a of plans.advice) subs.push(await load("#/subscriber/" + a.subscriber_id));

// Every other view: its first load (its queries not cached yet) and `viewRuns` loads after it.
// The partner view is opened with a partner's key, the agent console on one subscriber.
const partnerKey = JSON.parse(run("keys", "create", "--data", tmp + "/store", "--role", "partner", "--partner", "1", "--json")).key;
const viewRuns = 3;
const views = {};
for (const [name, hash, as] of [
  ["funnel", "#/funnel", key],
  ["pricing", "#/pricing", key],
  ["abtest", "#/abtest", key],
  ["geo", "#/geo", key],
  ["partner", "#/partner", partnerKey],
  ["agent", "#/agent/" + plans.advice[0].subscriber_id, key],
  ["summary", "#/summary", key],
]) {
  const first = await load(hash, as);
  const later = [];
  for (let i = 0; i < viewRuns; ++i) later.push(await load(hash, as));
  views[name] = { first_render_ms: +first.render_ms.toFixed(1), first_api_ms: +first.api_ms.toFixed(1), later: summary(later) };
}

const browserVersion = browser.version();
await browser.close();
server.kill("SIGTERM");

const result = {
  benchmark: "web first render",
  date: new Date().toISOString(),
  machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? "", kernel: release(), chromium: browserVersion },
  world: { subscribers, days, load_seconds: loadSeconds },
  browser: "Debian chromium, headless, fresh context per load",
  target_ms: 1000,
  overview_cold: { render_ms: +cold.render_ms.toFixed(1), api_ms: +cold.api_ms.toFixed(1), requests: cold.requests },
  overview_warm: summary(warm),
  subscriber_page: summary(subs),
  views,
};
result.slower_than_target = [
  ...(result.overview_cold.render_ms >= 1000 ? ["overview (cold)"] : []),
  ...(result.overview_warm.render_ms_p95 >= 1000 ? ["overview (warm)"] : []),
  ...(result.subscriber_page.render_ms_p95 >= 1000 ? ["subscriber page"] : []),
  ...Object.entries(views).flatMap(([name, v]) => [
    ...(v.first_render_ms >= 1000 ? [name + " (first load)"] : []),
    ...(v.later.render_ms_p95 >= 1000 ? [name + " (later loads)"] : []),
  ]),
];
result.meets_target = result.slower_than_target.length === 0;
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(JSON.stringify(result, null, 2));
rmSync(tmp, { recursive: true, force: true });
