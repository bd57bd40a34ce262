// What the browser tests share: the world global-setup.mjs made, signing in, waiting for a view
// to settle, and screenshots (saved to $TALLY_WEB_OUT/screenshots as artifacts).
import { expect } from "@playwright/test";
import { readFileSync } from "node:fs";

export const out = process.env.TALLY_WEB_OUT ?? "/tmp/tally-web-test";
export const world = JSON.parse(readFileSync(out + "/world.json", "utf8"));

export const shot = (page, name) => page.screenshot({ path: `${out}/screenshots/${name}.png`, fullPage: true });

export async function signIn(page, key) {
  await page.goto(world.base + "/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

// The view the address names shows its cards, and every one has finished: none loading, and
// none failed. (A click on a tab changes the address at once, but the page renders the new view
// on the hashchange event after it: until then the old view's cards are still there.)
export async function settled(page) {
  const view = new URL(page.url()).hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  if (view && view !== "login") await expect(page.locator(`main[data-view="${view}"]`)).toBeVisible();
  await expect(page.locator("[data-card]").first()).toBeVisible();
  await expect(page.locator('[data-card][data-state="loading"]')).toHaveCount(0);
  await expect(page.locator('[data-card][data-state="error"]')).toHaveCount(0);
}

// The data a card shows, as its CSV button downloads it.
export async function cardCsv(page, card) {
  const [csv] = await Promise.all([page.waitForEvent("download"), page.locator(`[data-card="${card}"] header button`).click()]);
  return readFileSync(await csv.path(), "utf8");
}
