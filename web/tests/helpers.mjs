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

// The view shows its cards, and every one has finished: none loading, and none failed.
export async function settled(page) {
  await expect(page.locator("[data-card]").first()).toBeVisible();
  await expect(page.locator('[data-card][data-state="loading"]')).toHaveCount(0);
  await expect(page.locator('[data-card][data-state="error"]')).toHaveCount(0);
}
