// The slot's waits read the clock they are given (lib/core/wait.ts): the pace
// of an exit under launchd, a persisted backoff, and the runner's deadlines
// wait minutes of a test clock in a few real milliseconds. Each would wait in
// real time, and fail here, if its code read the system's clock.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../lib/config/index.ts";
import { createLogger, type Logger } from "../lib/core/log.ts";
import { pacedExit, PRE_CYCLE_PAUSE_MS } from "../lib/slot/loop.ts";
import { stopController } from "../lib/core/signals.ts";
import { poll, systemClock } from "../lib/core/wait.ts";
import { startRun } from "../lib/runner/run.ts";
import { tartFor } from "../lib/slot/context.ts";
import { recordFailure, waitOutBackoff } from "../lib/slot/loop.ts";
import { SlotStore } from "../lib/slot/state.ts";
import { APP_KEY_PEM } from "./fixtures/app-key.ts";
import { FakeClock } from "./helpers/clock.ts";

const EPOCH = Date.parse("2030-01-01T00:00:00Z");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A config of its own dir; `tart` is the script that stands for tart (and the guest behind `tart exec`). */
function setup(tart = "exit 1"): { dir: string; config: Config; log: Logger; lines: () => Record<string, unknown>[] } {
  const dir = mkdtempSync(join(tmpdir(), "waits-"));
  dirs.push(dir);
  writeFileSync(join(dir, "app.pem"), APP_KEY_PEM, { mode: 0o600 });
  writeFileSync(join(dir, "tart"), `#!/bin/sh\n${tart}\n`);
  chmodSync(join(dir, "tart"), 0o755);
  writeFileSync(join(dir, "config.yml"), [
    "github: { url: https://github.com/acme, app: { id: 1, installation_id: 2, private_key_path: app.pem } }",
    "runner: { name_prefix: acme-mac, listen_timeout: 2m, job_timeout: 6h }",
    "image: { ref: ghcr.io/acme/macos:latest }",
    `host: { state_dir: ${dir}, tart_path: ${join(dir, "tart")}, backoff_initial: 30s, backoff_max: 10m }`,
  ].join("\n"));
  let text = "";
  const stream = new Writable({ write: (chunk, _e, done) => ((text += String(chunk)), done()) });
  return {
    dir,
    config: loadConfig({ path: join(dir, "config.yml") }),
    log: createLogger({ stream, format: "json", fields: { slot: 1 } }),
    lines: () => text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test("a stop (launchd's bootout) during the pause before an exit ends the pause at once", async () => {
  const clock = new FakeClock(EPOCH);
  const stopped = new AbortController();
  const paused = pacedExit(() => Promise.reject(new Error("slot busy")), { clock, env: { XPC_SERVICE_NAME: "com.example.slot-1" }, signal: stopped.signal });
  await clock.advance(3_000);
  stopped.abort();
  await expect(clock.settle(paused, { maxMs: 0 })).rejects.toThrow("slot busy");
  expect(clock.now()).toBe(EPOCH + 3_000);
});

test("an error before a cycle is re-thrown after PRE_CYCLE_PAUSE_MS on the clock under launchd, at once outside it", async () => {
  const clock = new FakeClock(EPOCH);
  const fail = () => Promise.reject(new Error("bad config"));
  const real = performance.now();
  await expect(clock.settle(pacedExit(fail, { clock, env: { XPC_SERVICE_NAME: "com.example.slot-1" } }), { maxMs: PRE_CYCLE_PAUSE_MS })).rejects.toThrow("bad config");
  expect(clock.now()).toBe(EPOCH + PRE_CYCLE_PAUSE_MS);
  await expect(clock.settle(pacedExit(fail, { clock, env: { XPC_SERVICE_NAME: "0" } }), { maxMs: 0 })).rejects.toThrow("bad config");
  expect(clock.now()).toBe(EPOCH + PRE_CYCLE_PAUSE_MS);
  expect(performance.now() - real).toBeLessThan(PRE_CYCLE_PAUSE_MS / 10);
});

test("a failure's backoff is set on the slot's clock and outlives a restart: the next start waits what is left of it, a stop ends the wait", async () => {
  const { dir, config, log, lines } = setup();
  const clock = new FakeClock(EPOCH);
  const store = new SlotStore(dir, 1, clock);
  store.write({ failures: 2 });
  // The third failure in a row: 30 s doubled twice.
  expect(recordFailure({ config, store, log, clock }, new Error("VM did not boot"))).toBe(120_000);
  expect(store.current.backoff_until).toBe("2030-01-01T00:02:00.000Z");
  expect(store.current.last_failure_at).toBe("2030-01-01T00:00:00.000Z");

  // launchd starts the slot again 50 s later: 70 s are left, waited on the clock.
  await clock.advance(50_000);
  const restarted = new SlotStore(dir, 1, clock);
  const real = performance.now();
  await clock.settle(waitOutBackoff({ store: restarted, log, stop: stopController(), clock }), { maxMs: 70_000 });
  expect(clock.now()).toBe(EPOCH + 120_000);
  expect(performance.now() - real).toBeLessThan(5_000);
  expect(restarted.current.phase).toBe("backoff");
  expect(lines().find((l) => l.event === "backoff.wait")).toMatchObject({ wait_ms: 70_000 });

  // A rate limit asks for longer than the backoff: the failure waits until GitHub's reset; a drain cuts the wait.
  const limited = Object.assign(new Error("rate limited"), { retryAtMs: clock.now() + 15 * 60_000 });
  expect(recordFailure({ config, store: restarted, log, clock }, limited)).toBe(15 * 60_000);
  const stop = stopController();
  const waiting = waitOutBackoff({ store: restarted, log, stop, clock });
  await clock.advance(60_000);
  stop.request();
  await waiting;
  expect(clock.now()).toBe(EPOCH + 180_000);
  expect(clock.pending).toBe(0);
});

test("runner.listen_timeout runs out on the run's clock while the guest says nothing", async () => {
  const { config, log, lines } = setup("exec sleep 30");
  const clock = new FakeClock(EPOCH);
  const real = performance.now();
  const run = startRun({ config, tart: tartFor(config), vm: "acme-mac-1", ip: "192.0.2.1", jitConfig: "e30=", log, clock });
  const outcome = await clock.settle(run.done, { maxMs: config.runner.listenTimeoutMs });
  expect(outcome).toMatchObject({ kind: "timeout", detail: `the runner did not print "Listening for Jobs" within runner.listen_timeout (120000 ms)` });
  expect(clock.now()).toBe(EPOCH + 120_000);
  expect(performance.now() - real).toBeLessThan(5_000);
  expect(lines().find((l) => l.event === "run.done")).toMatchObject({ duration_ms: 120_000, outcome: "timeout" });
});

test("runner.job_timeout runs out on the run's clock, counted from the job's start", async () => {
  const listening = "2030-01-01 00:00:00Z: Listening for Jobs";
  const running = "2030-01-01 00:00:00Z: Running job: build";
  const { config, log } = setup(`echo '${listening}'; echo '${running}'; exec sleep 30`);
  const clock = new FakeClock(EPOCH);
  const run = startRun({ config, tart: tartFor(config), vm: "acme-mac-1", ip: "192.0.2.1", jitConfig: "e30=", log, clock });
  // The guest's lines arrive in real time; the clock stands still meanwhile.
  expect(await poll(() => run.job, { deadline: Date.now() + 10_000, everyMs: 10, clock: systemClock })).toBe("build");
  await clock.advance(60 * 60_000);
  const outcome = await clock.settle(run.done, { maxMs: config.runner.jobTimeoutMs });
  expect(outcome).toMatchObject({ kind: "timeout", job: "build", detail: `job "build" ran longer than runner.job_timeout (21600000 ms)` });
  expect(clock.now()).toBe(EPOCH + 6 * 60 * 60_000);
});
