// Browser tests of tally's dashboards (docs/web.md): @playwright/test driving Debian's chromium
// (Playwright's own browser download does not work here). Run by web/tests/run.mjs, which
// ctest calls as `web_browser`; global-setup.mjs makes a world and starts `tally serve`.
import { defineConfig } from "@playwright/test";

const out = process.env.TALLY_WEB_OUT ?? "/tmp/tally-web-test";

export default defineConfig({
  testDir: "./tests",
  testMatch: /.*\.spec\.mjs/,
  globalSetup: "./tests/global-setup.mjs",
  globalTeardown: "./tests/global-teardown.mjs",
  outputDir: out + "/results",
  workers: 2,
  timeout: 60_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    viewport: { width: 1280, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      // Without these, chromium reaches for Google's servers, which this network refuses.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
    trace: "off",
  },
});
