// Makes a small world, loads it through the ledger (so balances, invoices and plan advice
// exist), creates keys and embed tokens, and starts `tally serve` on a free port. What the tests
// need is written to $TALLY_WEB_OUT/world.json; the server's pid too, for global-teardown.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";

const tally = process.env.TALLY_BIN;
const out = process.env.TALLY_WEB_OUT ?? "/tmp/tally-web-test";
if (!tally) throw new Error("TALLY_BIN must name the tally binary (web/tests/run.mjs sets it)");

function run(...args) {
  return execFileSync(tally, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export default async function globalSetup() {
  rmSync(out + "/data", { recursive: true, force: true });
  mkdirSync(out + "/screenshots", { recursive: true });
  const data = out + "/data/store";
  run("generate", "--out", out + "/data/world", "--subscribers", "400", "--days", "75", "--seed", "7");
  run("load", "--data", data, out + "/data/world", "--ledger", "--quiet");
  // Models for the ML tab: short label horizons, so that the 75-day world is long enough.
  run("train", "--data", data, "--model", "churn", "--churn-days", "7", "--train-cutoffs", "1");
  run("train", "--data", data, "--model", "ltv", "--ltv-days", "7", "--train-cutoffs", "1");
  const key = (...scope) => JSON.parse(run("keys", "create", "--data", data, "--json", ...scope)).key;
  const admin = key("--role", "admin", "--name", "web-admin");
  const partner = key("--role", "partner", "--partner", "1", "--name", "web-partner");
  const agent = key("--role", "agent", "--name", "web-agent");

  const server = spawn(tally, ["serve", "--data", data, "--port", "0"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, TALLY_SERVE_ACCESS_LOG: "off", TALLY_SERVE_RATE_PER_KEY: "10000", TALLY_SERVE_BURST_PER_KEY: "10000" },
  });
  const base = await new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error("tally serve did not start: " + err)), 60_000);
    server.stderr.on("data", (chunk) => {
      err += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on("exit", (code) => reject(new Error(`tally serve exited (${code}): ${err}`)));
  });
  server.stderr.removeAllListeners("data");
  server.stderr.resume();

  // Two subscribers of different partners with plan advice, for the isolation tests.
  const get = async (path) => {
    const r = await fetch(base + path, { headers: { Authorization: "Bearer " + admin } });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const plans = await get("/v1/insights/plans?limit=200");
  const a = plans.advice[0];
  const b = plans.advice.find((x) => x.partner_id !== a.partner_id);
  const profile = async (id) => get(`/v1/subscribers/${id}`);
  const token = (id, dashboards = "subscriber") =>
    run("keys", "token", "--data", data, "--role", "subscriber", "--subscriber", String(id), "--dashboards", dashboards, "--ttl", "1h").trim();
  const world = {
    base,
    data,
    admin,
    partner,
    agent,
    // A subscriber of partner 1 (the partner key's own) and one of another partner.
    mine: plans.advice.find((x) => x.partner_id === 1).subscriber_id,
    theirs: plans.advice.find((x) => x.partner_id !== 1).subscriber_id,
    a: { id: a.subscriber_id, profile: await profile(a.subscriber_id), token: token(a.subscriber_id) },
    b: { id: b.subscriber_id, profile: await profile(b.subscriber_id), token: token(b.subscriber_id) },
    pid: server.pid,
  };
  writeFileSync(out + "/world.json", JSON.stringify(world, null, 1));
  server.unref();
}
