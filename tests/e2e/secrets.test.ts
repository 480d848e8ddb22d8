// A runner that prints its own secrets (SIM_RUNNER_LEAK_SECRETS) and chatters
// (SIM_RUNNER_NOISE_LINES), served by the compiled loop with --verbose: no run
// of 24 characters of any secret inside its JIT config is left in the slot's
// log, its VM log, its state files or its metrics; the guest's other lines are
// at debug, redacted, cut and capped.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, job, logText, slots, start } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

const FRAGMENT = 24;
const NOISE_LINES = 300;
/** GUEST_OUTPUT_LIMITS: what the slot promises an operator (and the disk). */
const LINES_PER_MINUTE = 120;
const LINE_CHARS = 500;

/** The secrets inside a JIT config, decoded here independently of lib/: the OAuth client id and token, every RSA parameter. */
function innerSecrets(encoded: string): string[] {
  const files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as Record<string, string>;
  const file = (name: string) => JSON.parse(Buffer.from(files[name]!, "base64").toString("utf8"));
  const { clientId, token } = file(".credentials").data as { clientId: string; token: string };
  const rsa = Object.values(file(".credentials_rsaparams") as Record<string, string>);
  return [clientId, token, ...rsa].filter((s) => s.length >= FRAGMENT);
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

test("a runner that prints its secrets whole, in part and split: none of them in any log, state or metrics file; its chatter is capped", async () => {
  const s = slots(world, {}, { boot_ms: 150, runner_env: { SIM_RUNNER_LEAK_SECRETS: "1", SIM_RUNNER_NOISE_LINES: String(NOISE_LINES) } });
  const metricsDir = join(world.dir, s.org, "metrics");
  mkdirSync(metricsDir, { recursive: true });
  const config = readFileSync(s.path, "utf8");
  writeFileSync(s.path, `${config}\nmetrics:\n  textfile_dir: ${JSON.stringify(metricsDir)}\n`);
  const j = await enqueue(s, "leaky", "echo built");

  const run = start(world, "loop", ["--slot", "1", "--config", s.path, "--verbose"], s.host.env);
  const lines = await exitOf(run, 0);
  // What launchd would append to slot-1.log: the loop's stderr, as it was written.
  writeFileSync(join(s.logDir, "slot-1.log"), (await run.done).stderr);
  const cleanup = await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done;
  expect(cleanup.code).toBe(0);
  writeFileSync(join(s.logDir, "cleanup-1.log"), cleanup.stderr);
  expect((await job(s, j.id)).result).toBe("Succeeded");

  const issued = (await world.gh.jitConfigs()).filter((c) => c.runner_name.startsWith(`${s.prefix}-`));
  expect(issued.length).toBeGreaterThanOrEqual(1);
  const secrets = issued.flatMap((c) => innerSecrets(c.encoded_jit_config));
  expect(secrets.length).toBe(issued.length * 9); // clientId, token, d, dp, dq, inverseQ, modulus, p, q

  // The guest's lines went through the logger (so the test would see a leak) and every piece of a secret was scrubbed.
  const guest = events(lines, "guest.output");
  const leaked = guest.filter((l) => l.msg?.startsWith("debug: runner secret "));
  expect(leaked.length).toBe(9 * 5 * 2); // 9 secrets, 5 kinds of piece, stdout and stderr: all before the noise, within the cap
  for (const l of leaked) {
    expect(l.level).toBe("debug");
    expect(l.msg).toMatch(/^debug: runner secret \d+ (whole|prefix|middle|escaped|split): \[REDACTED\]( \(end\))?$/);
  }

  // No run of 24 characters of any secret anywhere: raw, or with JSON's escaped slashes undone.
  const windows = new Set(secrets.flatMap((v) => Array.from({ length: v.length - FRAGMENT + 1 }, (_, i) => v.slice(i, i + FRAGMENT))));
  const files = [s.logDir, s.stateDir, metricsDir].flatMap(filesUnder);
  expect(files.map((f) => f.slice(world.dir.length))).toEqual(expect.arrayContaining([expect.stringMatching(/slot-1\.log$/), expect.stringMatching(/slot-1\.vm\.log$/), expect.stringMatching(/\.prom$/), expect.stringMatching(/slot-1\.json$/)]));
  const found: string[] = [];
  for (const path of files) {
    const raw = readFileSync(path, "utf8");
    for (const text of [raw, raw.replace(/\\+\//g, "/")]) {
      for (let i = 0; i + FRAGMENT <= text.length; i++) if (windows.has(text.slice(i, i + FRAGMENT))) found.push(`${path}: …${text.slice(Math.max(0, i - 20), i + FRAGMENT + 20)}…`);
    }
  }
  expect(found).toEqual([]);

  // The status lines at info; the rest at debug, cut to the line cap, and no more than the rate cap in the minute the run took.
  expect(events(lines, "runner.listening").map((l) => l.level)).toEqual(["info"]);
  expect(guest.every((l) => l.level === "debug")).toBe(true);
  expect(guest.length).toBe(LINES_PER_MINUTE);
  const noise = guest.filter((l) => l.msg?.startsWith("debug: noise "));
  expect(noise.length).toBeGreaterThan(0);
  for (const l of noise) {
    expect(l.msg).toBe(`${`debug: noise ${/^debug: noise (\d+)/.exec(l.msg!)![1]} ${".".repeat(2000)}`.slice(0, LINE_CHARS)}…[truncated]`);
    expect(l).toMatchObject({ truncated: true });
  }
  const dropped = events(lines, "guest.output_dropped");
  const droppedTotal = dropped.reduce((n, l) => n + (l.dropped as number), 0);
  if (droppedTotal < leaked.length + NOISE_LINES - LINES_PER_MINUTE) console.error(`dropped lines reported: ${droppedTotal}; the log:\n${logText(lines)}`);
  expect(droppedTotal).toBeGreaterThanOrEqual(leaked.length + NOISE_LINES - LINES_PER_MINUTE);
  expect(dropped.every((l) => l.level === "debug")).toBe(true);
}, 120_000);
