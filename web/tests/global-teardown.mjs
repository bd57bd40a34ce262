// Stops the server global-setup started, by its pid.
import { readFileSync } from "node:fs";

export default async function globalTeardown() {
  const out = process.env.TALLY_WEB_OUT ?? "/tmp/tally-web-test";
  const { pid } = JSON.parse(readFileSync(out + "/world.json", "utf8"));
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // already gone
  }
}
