// The Geographic tab, the partner view, the agent console and the executive summary, in a real
// browser against a real `tally serve` (global-setup.mjs). Screenshots go to
// $TALLY_WEB_OUT/screenshots, and the summary's PDF to $TALLY_WEB_OUT/summary.pdf.
import { expect, test } from "@playwright/test";
import { cardCsv, out, settled, shot, signIn, world } from "./helpers.mjs";

// Every straight segment of every subpath of an SVG path drawn by d3-geo ("M x,y L x,y ... Z"),
// as [x0, x1] pairs: an unsplit polygon crossing the antimeridian shows up as a segment that
// spans most of the map's width.
function widestJump(d) {
  let widest = 0;
  for (const sub of d.split("M").filter(Boolean)) {
    const xs = [...sub.matchAll(/(-?[\d.]+(?:e-?\d+)?),(-?[\d.]+(?:e-?\d+)?)/g)].map((m) => Number(m[1]));
    for (let i = 1; i < xs.length; ++i) widest = Math.max(widest, Math.abs(xs[i] - xs[i - 1]));
  }
  return widest;
}

test("the geographic tab maps regions on a world cut at the antimeridian, and US cities", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="geo"]').click();
  await expect(page).toHaveURL(/#\/geo$/);
  await settled(page);
  const worldCard = page.locator('[data-card="geo-world"]');
  await expect(worldCard).toHaveAttribute("data-state", "ready");
  // The four regions as bubbles, and their cities as dots.
  await expect(worldCard.locator('circle[data-place^="region:"]')).toHaveCount(4);
  expect(await worldCard.locator('circle[data-place^="city:"]').count()).toBeGreaterThan(10);
  expect(await worldCard.locator("path[data-country]").count()).toBeGreaterThan(150);
  // Split at the antimeridian: Russia and Fiji are drawn in pieces at both edges, and no
  // country's outline runs across the map.
  const shapes = await worldCard.locator("path[data-country]").evaluateAll((els) => els.map((e) => ({ name: e.dataset.country, d: e.getAttribute("d") })));
  for (const s of shapes) expect(widestJump(s.d), s.name).toBeLessThan(480);
  for (const name of ["Russia", "Fiji"]) {
    const pieces = shapes
      .find((s) => s.name === name)
      .d.split("M")
      .filter(Boolean)
      .map((sub) => [...sub.matchAll(/(-?[\d.]+),(-?[\d.]+)/g)].map((m) => Number(m[1])));
    expect(pieces.some((xs) => Math.max(...xs) < 300), name + " has a piece at the left edge").toBe(true);
    expect(pieces.some((xs) => Math.min(...xs) > 660), name + " has a piece at the right edge").toBe(true);
  }
  // The US map has its cities; every bubble can be reached from the keyboard and has a name.
  const us = page.locator('[data-card="geo-us"]');
  await expect(us).toHaveAttribute("data-state", "ready");
  expect(await us.locator("path[data-state-name]").count()).toBeGreaterThanOrEqual(50);
  const cities = us.locator("circle[data-place]");
  expect(await cities.count()).toBeGreaterThan(0);
  await cities.first().focus();
  await expect(cities.first()).toBeFocused();
  expect(await cities.first().getAttribute("aria-label")).toMatch(/active subscribers \d/);
  // Colour by another measure: the legend and the ranking follow.
  await page.selectOption("#geo-measure", "call_drop_rate");
  await expect(worldCard.locator(".map-legend")).toContainText("Call-drop rate");
  await expect(page.locator('[data-card="geo-cities"] caption')).toContainText("call-drop rate");
  // The region table's data is the API's answer for the same range, region by region.
  const lines = (await cardCsv(page, "geo-regions")).trim().split("\r\n");
  const header = lines[0].split(",");
  expect(lines.length).toBe(5);
  const [from, to] = (await page.locator("[data-range]").getAttribute("data-range")).split("..");
  const api = await (await fetch(`${world.base}/v1/insights/geo?from=${from}&to=${to}`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  for (const line of lines.slice(1)) {
    const row = Object.fromEntries(line.split(",").map((v, i) => [header[i], v]));
    const region = api.regions.find((r) => r.name === row.name);
    expect(Number(row.active_subscribers), row.name).toBe(region.active_subscribers);
    expect(Number(row.revenue), row.name).toBeCloseTo(region.revenue, 6);
  }
  await shot(page, "geo");
});

test("the geographic tab follows the filters", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.goto(world.base + "/#/geo");
  await settled(page);
  await page.selectOption("#f-region", "Europe");
  await settled(page);
  // Only Europe keeps subscribers: one region bubble, and no US city.
  await expect(page.locator('[data-card="geo-world"] circle[data-place^="region:"]')).toHaveCount(1);
  await expect(page.locator('[data-card="geo-world"] circle[data-place="region:Europe"]')).toHaveCount(1);
  await expect(page.locator('[data-card="geo-us"]')).toHaveAttribute("data-state", "empty");
  await expect(page.locator('[data-card="geo-regions"]')).toHaveAttribute("data-rows", "1");
});

test("the partner view shows one partner's business, for the partner and for an analyst", async ({ page }) => {
  await signIn(page, world.partner);
  await settled(page);
  await page.locator('[data-tab="partner"]').click();
  await settled(page);
  await expect(page.locator("[data-partner]")).toHaveAttribute("data-partner", "1");
  for (const card of ["kpis", "partner-trend", "partner-plans", "partner-advice"]) {
    await expect(page.locator(`[data-card="${card}"]`)).toHaveAttribute("data-state", "ready");
  }
  // Unusual charges of the KPIs' month (the newest complete one): the card shows the partner's
  // flags, or says it has none, as the API does.
  const through = (await page.locator("[data-range]").getAttribute("data-range")).split("..")[1];
  const end = new Date(through + "T00:00:00Z");
  end.setUTCDate(end.getUTCDate() + 1);
  const last = end.getUTCDate() === 1 ? through : new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth(), 0)).toISOString().slice(0, 10);
  const flags = await (await fetch(`${world.base}/v1/insights/anomalies?from=${last.slice(0, 8)}01&to=${last}`, { headers: { Authorization: "Bearer " + world.partner } })).json();
  const causes = new Set(flags.flags.map((f) => f.cause)).size;
  await expect(page.locator('[data-card="partner-flags"]')).toHaveAttribute("data-state", causes ? "ready" : "empty");
  await expect(page.locator('[data-card="partner-flags"]')).toHaveAttribute("data-rows", String(causes));
  const partnerKpis = await page.locator('[data-kpi="active_subscribers"] .kpi-value').textContent();
  await shot(page, "partner");
  await page.getByRole("button", { name: "Sign out" }).click();

  // An admin chooses the partner in the filters, and sees the same numbers.
  await page.getByLabel("API key").fill(world.admin);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled(page);
  await page.goto(world.base + "/#/partner");
  await expect(page.locator('[data-card="partner-choose"]')).toHaveAttribute("data-state", "empty");
  await page.selectOption("#f-partner", "1");
  await settled(page);
  await expect(page.locator('[data-kpi="active_subscribers"] .kpi-value')).toHaveText(partnerKpis);
});

test("the agent console finds a subscriber and shows its activity, masked for a partner", async ({ page }) => {
  await signIn(page, world.agent);
  await settled(page);
  await page.locator('[data-tab="agent"]').click();
  await expect(page).toHaveURL(/#\/agent$/);
  const profile = await (await fetch(`${world.base}/v1/subscribers/${world.mine}`, { headers: { Authorization: "Bearer " + world.admin } })).json();
  // An agent finds by the MSISDN's last digits.
  await page.getByLabel("Find a subscriber").fill(profile.msisdn.slice(-6));
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.locator('[data-card="agent-results"]')).toHaveAttribute("data-state", "ready");
  await page.locator(`[data-open="${world.mine}"]`).click();
  await expect(page).toHaveURL(new RegExp(`#/agent/${world.mine}$`));
  await page.selectOption("#agent-hours", "168");
  await settled(page);
  await expect(page.locator("[data-subscriber]")).toContainText(profile.msisdn);
  await expect(page.locator('[data-card="agent-sessions"]')).toHaveAttribute("data-state", "ready");
  await expect(page.locator('[data-card="agent-balance"]')).toHaveAttribute("data-state", "ready");
  for (const card of ["agent-drops", "agent-complaints", "agent-recharges"]) {
    await expect(page.locator(`[data-card="${card}"]`)).toHaveAttribute("data-state", /ready|empty/);
  }
  // The page's session count is the API's.
  const activity = await (await fetch(`${world.base}/v1/subscribers/${world.mine}/activity?hours=168&limit=50`, { headers: { Authorization: "Bearer " + world.agent } })).json();
  await expect(page.locator('[data-card="agent-sessions"]')).toHaveAttribute("data-rows", String(activity.sessions.length));
  expect(await page.locator("[data-as-of]").getAttribute("data-as-of")).toBe(activity.as_of);
  await shot(page, "agent");
  await page.getByRole("button", { name: "Sign out" }).click();

  // A partner's agent: names and numbers masked, no search by MSISDN, no other partner's rows.
  await page.getByLabel("API key").fill(world.partner);
  await page.getByRole("button", { name: "Sign in" }).click();
  await settled(page);
  await page.goto(`${world.base}/#/agent/${world.mine}`);
  await settled(page);
  const shown = await page.locator("[data-msisdn]").getAttribute("data-msisdn");
  expect(shown).toContain("*");
  expect(await page.locator("body").textContent()).not.toContain(profile.msisdn);
  await page.goto(`${world.base}/#/agent/${world.theirs}`);
  await expect(page.locator('[data-card="agent-sessions"]')).toHaveAttribute("data-state", "error");
  await expect(page.locator('[data-card="agent-sessions"]')).toContainText("404");
  await page.goto(`${world.base}/#/agent`);
  await page.getByLabel("Find a subscriber").fill(profile.msisdn);
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.locator('[data-card="agent-results"]')).toContainText("masked");
});

test("the executive summary states the findings and prints to PDF", async ({ page }) => {
  await signIn(page, world.admin);
  await settled(page);
  await page.locator('[data-tab="summary"]').click();
  await settled(page);
  const findings = page.locator(".findings li");
  expect(await findings.count()).toBeGreaterThanOrEqual(6);
  for (const topic of ["revenue", "subscribers", "regions", "pricing", "experiments", "unusual charges", "plan advice"]) {
    expect(await page.locator(`.findings li[data-topic="${topic}"]`).count(), topic).toBeGreaterThan(0);
  }
  await expect(page.locator('.findings li[data-topic="error"]')).toHaveCount(0);
  // Every KPI tile has a status.
  expect(await page.locator("[data-kpi][data-status]").count()).toBe(6);
  await shot(page, "summary");
  await page.emulateMedia({ media: "print" });
  await expect(page.locator(".top nav")).toBeHidden();
  await expect(page.locator("[data-print]")).toBeHidden();
  const pdf = await page.pdf({ path: out + "/summary.pdf", format: "A4", printBackground: true });
  expect(pdf.subarray(0, 5).toString()).toBe("%PDF-");
  expect(pdf.length).toBeGreaterThan(20_000);
});

test("every view fits a phone's width", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await signIn(page, world.admin);
  await settled(page);
  for (const view of ["overview", "realtime", "funnel", "pricing", "abtest", "ml", "geo", "summary", `agent/${world.mine}`, `subscriber/${world.mine}`]) {
    await page.goto(`${world.base}/#/${view}`);
    await settled(page);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, view).toBeLessThanOrEqual(375);
  }
  await page.goto(`${world.base}/#/geo`);
  await settled(page);
  await shot(page, "geo-phone");
});
