// The dashboards in a real browser (Debian's chromium) against a real `tally serve` on a world
// loaded through the ledger (global-setup.mjs). Screenshots of each view go to
// $TALLY_WEB_OUT/screenshots.
import { expect, test } from "@playwright/test";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { cardCsv, settled, shot, signIn, world } from "./helpers.mjs";

// An HS256 token signed with the data directory's secret, as an operator's backend would mint
// one with any JWT library: here, to make one that has already expired.
function mint(claims) {
  // The key is the file's text (base64url) without its line break (docs/embedding.md).
  const secret = readFileSync(world.data + "/embed.secret", "utf8").trimEnd();
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims);
  return input + "." + createHmac("sha256", secret).update(input).digest("base64url");
}

test("the overview renders every chart with data and colour-codes the KPIs", async ({ page }) => {
  const started = Date.now();
  await signIn(page, world.admin);
  await expect(page).toHaveURL(/#\/overview$/);
  await settled(page);
  const firstRender = Date.now() - started;
  for (const card of ["kpis", "revenue", "subscribers", "usage", "revenue-by-region", "revenue-by-plan"]) {
    const c = page.locator(`[data-card="${card}"]`);
    await expect(c).toHaveAttribute("data-state", "ready");
    expect(Number(await c.getAttribute("data-rows"))).toBeGreaterThan(0);
  }
  // Charts are drawn (SVG paths), and every KPI has a status in words as well as colour.
  expect(await page.locator('[data-card="revenue"] svg path').count()).toBeGreaterThan(5);
  const statuses = await page.locator("[data-kpi]").evaluateAll((els) => els.map((e) => e.dataset.status));
  expect(statuses).toHaveLength(6);
  for (const s of statuses) expect(["green", "amber", "red"]).toContain(s);
  await shot(page, "overview");
  console.log(`overview: first render ${firstRender} ms (sign-in included)`);
});

test("filters change the data of every chart", async ({ page, context }) => {
  // The unfiltered data is read in a tab of its own: Chromium holds back a tab's eleventh download
  // in a row (on a busy machine it never started), and this test downloads twelve files.
  const plain = await context.newPage();
  await signIn(plain, world.admin);
  await settled(plain);
  const cards = await plain.locator("[data-card]").evaluateAll((els) => els.map((e) => e.dataset.card));
  expect(cards).toHaveLength(6);
  const before = {};
  for (const c of cards) before[c] = await cardCsv(plain, c);
  await plain.close();
  await signIn(page, world.admin);
  await settled(page);
  const mrr = await page.locator('[data-kpi="mrr"] .kpi-value').textContent();
  const regions = Number(await page.locator('[data-card="revenue-by-region"]').getAttribute("data-rows"));
  expect(regions).toBeGreaterThan(1);
  const region = await page.locator("#f-region option").nth(1).getAttribute("value");
  await page.selectOption("#f-region", region);
  await settled(page);
  await expect(page.locator('[data-card="revenue-by-region"]')).toHaveAttribute("data-rows", "1");
  await expect(page.locator('[data-card="revenue-by-region"]')).toContainText(region);
  expect(await page.locator('[data-kpi="mrr"] .kpi-value').textContent()).not.toBe(mrr);
  // Every card's data is different under the filter.
  for (const c of cards) expect(await cardCsv(page, c), c).not.toBe(before[c]);
  // The filter holds on the next load, and clears.
  await page.reload();
  await settled(page);
  await expect(page.locator("#f-region")).toHaveValue(region);
  await page.selectOption("#f-region", "");
  await settled(page);
  await expect(page.locator('[data-card="revenue-by-region"]')).toHaveAttribute("data-rows", String(regions));
});

test("the funnel tab renders its cohorts, and the filters cut them", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="funnel"]').click();
  await expect(page).toHaveURL(/#\/funnel$/);
  await settled(page);
  for (const card of ["funnel", "funnel-by-month", "funnel-drop-off", "funnel-by-region", "funnel-by-device"]) {
    const c = page.locator(`[data-card="${card}"]`);
    await expect(c).toHaveAttribute("data-state", "ready");
    expect(Number(await c.getAttribute("data-rows"))).toBeGreaterThan(0);
  }
  const visits = async () => Number((await page.locator('[data-card="funnel-drop-off"] tbody tr').first().locator("td").nth(1).textContent()).replace(/,/g, ""));
  const all = await visits();
  await shot(page, "funnel");
  const region = await page.locator("#f-region option").nth(1).getAttribute("value");
  await page.selectOption("#f-region", region);
  await settled(page);
  await expect(page.locator('[data-card="funnel-by-region"]')).toHaveAttribute("data-rows", "4");  // 4 steps of 1 region
  const some = await visits();
  expect(some).toBeGreaterThan(0);
  expect(some).toBeLessThan(all);
  // The same cohort as the API's funnel cut by region.
  const api = await (await fetch(`${world.base}/v1/insights/funnel?segments=region&from=${(await page.locator("[data-range]").getAttribute("data-range")).replace("..", "&to=")}`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  expect(api.segments.find((s) => s.segment.region === region).steps[0].count).toBe(some);
  await page.selectOption("#f-region", "");
});

test("the real-time tab updates live from the stream", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="realtime"]').click();
  await expect(page.locator("[data-live]")).toHaveAttribute("data-live", "open");
  await expect(page.locator('[data-card="live-seconds"]')).toHaveAttribute("data-state", "ready");
  await expect(page.locator('[data-card="live-five-minutes"]')).not.toHaveAttribute("data-state", "loading");
  const sessions = page.locator('[data-live-total="sessions"]');
  const before = Number((await sessions.textContent()).replace(/,/g, ""));
  // Sessions of subscriber A, stamped on the newest day of data, arrive over HTTP ingest.
  const through = (await (await fetch(world.base + "/v1/metrics", { headers: { Authorization: "Bearer " + world.admin } })).json()).data_through;
  const p = world.a.profile;
  const lines = Array.from({ length: 9 }, (_, i) =>
    JSON.stringify({ event_id: `web-live-${Date.now()}-${i}`, ts: `${through}T12:00:0${i}Z`, kind: "session", subscriber_id: p.subscriber_id, partner_id: p.partner_id, region: p.region, device_type: p.device_type, duration_s: 60 }),
  ).join("\n");
  const r = await fetch(world.base + "/v1/ingest/app", { method: "POST", headers: { Authorization: "Bearer " + world.admin, "Content-Type": "application/x-ndjson" }, body: lines + "\n" });
  expect(r.status).toBe(200);
  await expect.poll(async () => Number((await sessions.textContent()).replace(/,/g, "")), { timeout: 15_000 }).toBeGreaterThanOrEqual(before + 9);
  await shot(page, "realtime");
});

test("the A/B tab reports the chosen experiment both ways, its SRM check, sequence and power", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="abtest"]').click();
  await settled(page);
  const options = await page.locator("#ab-experiment option").evaluateAll((os) => os.map((o) => o.value));
  expect(options.length).toBeGreaterThanOrEqual(2);
  const key = options.includes("onboarding") ? "onboarding" : options[0];
  await page.selectOption("#ab-experiment", key);
  await settled(page);
  for (const card of ["ab-lifts", "ab-arms", "ab-sequential", "ab-power"]) {
    await expect(page.locator(`[data-card="${card}"]`)).toHaveAttribute("data-state", "ready");
  }
  // The page shows the server's verdict on sample ratio, and the server's arms.
  const range = (await page.locator("[data-range]").getAttribute("data-range")).split("..");
  const api = await (await fetch(`${world.base}/v1/insights/experiments/${key}?from=${range[0]}&to=${range[1]}`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  await expect(page.locator("[data-srm]")).toHaveAttribute("data-srm", api.srm.mismatch ? "mismatch" : "ok");
  await expect(page.locator('[data-card="ab-arms"]')).toContainText(api.arms[0].units.toLocaleString("en"));
  await expect(page.locator('[data-card="ab-lifts"] thead')).toContainText("p-value");
  await page.locator("label[for=ab-bayesian]").click();
  await expect(page.locator('[data-card="ab-lifts"] thead')).toContainText("P(treatment better)");
  const better = api.comparisons[0].bayesian.prob_treatment_better;
  await expect(page.locator('[data-card="ab-lifts"] tbody tr').first()).toContainText((better * 100).toFixed(1) + "%");
  await shot(page, "abtest");
  // The power calculator answers what the API answers.
  await page.fill("#pw-baseline", "0.2");
  await page.fill("#pw-mde", "0.1");
  await page.getByRole("button", { name: "Compute" }).click();
  const power = await (await fetch(`${world.base}/v1/insights/power?baseline=0.2&mde=0.1&alpha=0.05&power=0.8`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  await expect(page.locator("[data-power]")).toHaveAttribute("data-power", String(power.units_per_arm));
});

test("the pricing tab shows elasticities with intervals and the plan advice of the base", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="pricing"]').click();
  await settled(page);
  for (const card of ["elasticity", "arpu-by-tier", "subscribers-by-plan", "plan-advice-summary", "plan-advice-top"]) {
    const c = page.locator(`[data-card="${card}"]`);
    await expect(c).toHaveAttribute("data-state", "ready");
    expect(Number(await c.getAttribute("data-rows"))).toBeGreaterThan(0);
  }
  const api = await (await fetch(`${world.base}/v1/insights/plans?limit=0`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  await expect(page.locator('[data-card="plan-advice-summary"]')).toContainText(`${api.subscribers.toLocaleString("en")} subscribers priced`);
  await shot(page, "pricing");
  // A subscriber in the advice list opens their page.
  await page.locator('[data-card="plan-advice-top"] tbody a').first().click();
  await expect(page).toHaveURL(/#\/subscriber\/\d+$/);
  await settled(page);
});

test("the ML tab shows the models, the riskiest subscribers and SHAP plots that add up", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="ml"]').click();
  await settled(page);
  for (const card of ["ml-versions", "ml-importance", "ml-risk", "ml-explain"]) {
    await expect(page.locator(`[data-card="${card}"]`)).toHaveAttribute("data-state", "ready");
  }
  const auth = { headers: { Authorization: "Bearer " + world.admin } };
  const top = await (await fetch(`${world.base}/v1/insights/models/churn/scores?limit=20`, auth)).json();
  await expect(page.locator("[data-explained]")).toHaveAttribute("data-explained", String(top.scores[0].subscriber_id));
  // Another subscriber from the list: the plots are redrawn for them, from the server's SHAP.
  const second = top.scores[1].subscriber_id;
  await page.locator(`[data-explain="${second}"]`).click();
  await expect(page.locator("[data-explained]")).toHaveAttribute("data-explained", String(second));
  const why = await (await fetch(`${world.base}/v1/subscribers/${second}/churn`, auth)).json();
  const sum = why.churn.contributions.reduce((s, c) => s + c.contribution, why.churn.base_value);
  expect(sum).toBeCloseTo(why.churn.margin, 3);
  await expect(page.locator("[data-explained]")).toContainText((why.churn_probability * 100).toFixed(1) + "%");
  expect(await page.locator('[data-card="ml-explain"] svg').count()).toBe(3);
  await shot(page, "ml");
  // A partner has no model routes, so no ML tab.
  const partnerPage = await page.context().newPage();
  await partnerPage.goto(world.base + "/");
  await partnerPage.evaluate((k) => sessionStorage.setItem("tally.key", k), world.partner);
  await partnerPage.goto(world.base + "/#/ml");
  await partnerPage.reload();  // the app reads the stored key when it starts
  await expect(partnerPage.locator("[data-fatal]")).toContainText("for admins and analysts");
});

test("a partner key sees its own partner's numbers only", async ({ page }) => {
  // An admin signs out first, leaving another partner in the filter: none of it may carry over
  // (options: all, 0, 1, 2, ...; the partner key is partner 1).
  await signIn(page, world.admin);
  await settled(page);
  await page.selectOption("#f-partner", await page.locator("#f-partner option").nth(3).getAttribute("value"));
  await settled(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API key").fill(world.partner);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled(page);
  await expect(page.locator(".who")).toContainText("partner 1");
  await expect(page.locator("#f-partner")).toHaveCount(0);
  // The page's revenue equals the API's for partner 1 over the same range, and is less than all.
  const range = (await page.locator("[data-range]").getAttribute("data-range")).split("..");
  const total = async (key) => {
    const r = await fetch(world.base + "/v1/query", {
      method: "POST",
      headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
      body: JSON.stringify({ measures: ["revenue"], timeDimensions: [{ dimension: "time", dateRange: range }] }),
    });
    return (await r.json()).rows[0][0];
  };
  const mine = await total(world.partner);
  expect(mine).toBeLessThan(await total(world.admin));
  const text = await cardCsv(page, "revenue-by-region");
  const sum = text.trim().split("\r\n").slice(1).reduce((s, line) => s + Number(line.split(",").at(-1)), 0);
  expect(sum).toBeCloseTo(mine, 1);
  await shot(page, "partner-overview");
});

test("a subscriber's embed token shows that subscriber and never another", async ({ page }) => {
  const seen = [];
  page.on("response", (r) => seen.push(r));
  await page.goto(`${world.base}/#/subscriber/${world.a.id}?token=${world.a.token}`);
  await settled(page);
  await expect(page.locator("[data-subscriber]")).toContainText(world.a.profile.name);
  for (const card of ["bill", "usage-trend", "plan-advice"]) {
    await expect(page.locator(`[data-card="${card}"]`)).toHaveAttribute("data-state", "ready");
  }
  await expect(page.locator("[data-action]")).toHaveCount(1);
  // The token is not left in the address bar.
  expect(page.url()).not.toContain("token=");
  await shot(page, "subscriber");

  // The same token, pointed at subscriber B: every card fails with 404, and nothing of B shows.
  await page.goto(`${world.base}/#/subscriber/${world.b.id}?token=${world.a.token}`);
  await expect(page.locator('[data-card][data-state="loading"]')).toHaveCount(0);
  expect(await page.locator('[data-card][data-state="ready"]').count()).toBe(0);
  await expect(page.locator('[data-card][data-state="error"]').first()).toContainText("404");
  const body = await page.locator("body").textContent();
  expect(body).not.toContain(world.b.profile.name);
  expect(body).not.toContain(world.b.profile.msisdn);
  for (const r of seen.filter((r) => r.url().includes(`/v1/subscribers/${world.b.id}`))) {
    expect(r.status()).toBe(404);
  }
  // A subscriber token opens no analyst tab.
  await page.goto(`${world.base}/#/overview?token=${world.a.token}`);
  await expect(page.locator("[data-fatal]")).toContainText("does not open the Overview dashboard");
});

test("an expired or tampered embed token is refused with the reason", async ({ page }) => {
  const now = Math.floor(Date.now() / 1000);
  const expired = mint({ sub: `subscriber:${world.a.id}`, role: "subscriber", subscriber: world.a.id, dashboards: ["subscriber"], iat: now - 7200, exp: now - 3600 });
  await page.goto(`${world.base}/#/subscriber/${world.a.id}?token=${expired}`);
  await expect(page.locator("[data-fatal]")).toContainText("expired");
  await expect(page.locator("[data-card]")).toHaveCount(0);
  const tampered = world.a.token.slice(0, -3) + (world.a.token.endsWith("A") ? "BBB" : "AAA");
  // (A new token in the hash of the open page replaces the refused one.)
  await page.goto(`${world.base}/#/subscriber/${world.a.id}?token=${tampered}`);
  await expect(page.locator("[data-fatal]")).toContainText("not valid");
  await expect(page.locator("[data-fatal]")).not.toContainText("expired");
  await expect(page.locator("[data-card]")).toHaveCount(0);
});

test("the one-line embed snippet shows the subscriber page in an iframe", async ({ page }) => {
  await page.goto(world.base + "/healthz");  // any page: the host app's page is written below
  await page.setContent(
    `<h1>My operator app</h1><script src="${world.base}/embed.js" data-token="${world.a.token}" data-view="subscriber/${world.a.id}"></script>`,
  );
  const frame = page.frameLocator("iframe");
  await expect(frame.locator("[data-subscriber]")).toContainText(world.a.profile.name);
  await expect(frame.locator('[data-card="bill"]')).toHaveAttribute("data-state", "ready");
  await shot(page, "embedded");
});

test("the subscriber page fits a phone and works from the keyboard", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(world.base + "/");
  // Keyboard only: the key field has focus; type, Enter.
  await expect(page.getByLabel("API key")).toBeFocused();
  await page.keyboard.type(world.admin);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/#\/overview$/);
  await settled(page);
  // The tabs are reachable with Tab and open with Enter.
  await page.locator('[data-tab="funnel"]').focus();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/#\/funnel$/);
  await settled(page);
  await page.goto(`${world.base}/#/subscriber/${world.a.id}`);
  await settled(page);
  await expect(page.locator('[data-card="bill"]')).toHaveAttribute("data-state", "ready");
  await expect(page.locator("[data-subscriber]")).toContainText(world.a.profile.name);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await shot(page, "subscriber-phone");
});

test("a bad key gets the server's reason at the login form", async ({ page }) => {
  await signIn(page, "tly_AAAAAAAA_" + "A".repeat(32));
  await expect(page.getByRole("alert")).toContainText(/key/i);
});
