// ctest's entry to the browser tests: node web/tests/run.mjs TALLY_BINARY OUT_DIR
// Typechecks the dashboards' TypeScript (esbuild strips types without checking them), then runs
// @playwright/test from web/node_modules with Debian's chromium.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const [tally, out] = process.argv.slice(2);
if (!tally || !out) {
  console.error("usage: node web/tests/run.mjs TALLY_BINARY OUT_DIR");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const web = resolve(here, "..");
const bin = (name) => join(web, "node_modules/.bin", name);
try {
  execFileSync(bin("tsc"), ["-p", web], { stdio: "inherit" });
  execFileSync(bin("playwright"), ["test", "--config", join(web, "playwright.config.mjs")], {
    stdio: "inherit",
    env: { ...process.env, TALLY_BIN: resolve(tally), TALLY_WEB_OUT: resolve(out) },
  });
} catch (e) {
  process.exit(e.status ?? 1);
}
