// The soak (`npm run soak -- --seed N`): the compiled loop on two slots of one
// simulated Mac under launchd-like agents, serving hundreds of short jobs while
// seeded faults hit every layer (see plan.ts); then the agents are booted out,
// each slot cleaned as `install --remove` does, and each slot started once more.
// Prints one table (measure.ts) and exits 0 only when every must-be-0 row is 0.
//   npm run soak -- --seed 7 --jobs 200 --profile fast --report soak-7.json
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stateFiles } from "../../lib/github/cache.ts";
import { parseLogLines, type LogLine } from "../../sim/logs.ts";
import type { Agent } from "../../sim/launchd.ts";
import { Director, type Injected, type Spawn } from "./director.ts";
import { startFeeder } from "./feeder.ts";
import { Injector } from "./inject.ts";
import { clean, measure, table } from "./measure.ts";
import { Deck } from "./plan.ts";
import { rng } from "./prng.ts";
import { watchArgv } from "./procs.ts";
import { SecretWatch } from "./secrets.ts";
import { finish, ours } from "./finish.ts";
import { makeNeighbours, PREFIX, SLOTS, startAgents, startSoakWorld } from "./setup.ts";

const PROFILES = ["fast", "scaled", "realistic"];

/** Log events that show the product handling a fault, for the summary under the table. */
const REACTIONS: Record<string, [string[], RegExp?]> = {
  "recoveries": [["recover.start"]],
  "jobs adopted": [["recover.adopt"]],
  "ghost runners": [["recover.ghost", "cleanup.runner_busy"]],
  "ghosts removed": [["ghost.removed"]],
  "jobs lost": [["job.lost"]],
  "drains meeting a just-assigned job": [["run.draining"], /just as GitHub assigned/],
  "JIT name taken (dropped answer)": [["token.name_taken"]],
  "cached token refused": [["github.token_refused"]],
  "GitHub retries": [["token.retry"]],
  "state files replaced": [["state.invalid"]],
  "swept VMs": [["sweep.vm"]],
  "swept runners": [["sweep.runner"]],
  "failed cycles": [["cycle.failed"]],
};

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function options() {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "1" },
      jobs: { type: "string", default: "200" },
      profile: { type: "string", default: "fast" },
      report: { type: "string" },
      "fault-rate": { type: "string", default: "0.45" },
      deadline: { type: "string", default: "20" },
      logs: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    say("usage: npm run soak -- [--seed N] [--jobs N] [--profile fast|scaled|realistic] [--report FILE] [--fault-rate 0..1] [--deadline MINUTES] [--logs DIR]");
    process.exit(0);
  }
  const whole = (name: string, v: string, min: number) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`soak: --${name} must be a whole number of at least ${min}, got '${v}'`);
    return Number(v);
  };
  const rate = Number(values["fault-rate"]);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`soak: --fault-rate must be between 0 and 1, got '${values["fault-rate"]}'`);
  if (!PROFILES.includes(values.profile)) throw new Error(`soak: --profile must be one of ${PROFILES.join(", ")}, got '${values.profile}'`);
  return { seed: whole("seed", values.seed, 0), jobs: whole("jobs", values.jobs, 1), profile: values.profile, report: values.report, logs: values.logs, rate, deadlineMs: whole("deadline", values.deadline, 1) * 60_000 };
}

let o: ReturnType<typeof options>;
try {
  o = options();
} catch (err) {
  say((err as Error).message);
  process.exit(64); // usage, as lib/core/errors.ts has it
}
const started = Date.now();
say(`soak: seed ${o.seed}, ${o.jobs} jobs, profile ${o.profile}, fault rate ${o.rate}; building dist/linux-x64 ...`);
const build = spawnSync(process.execPath, [join(import.meta.dir, "..", "..", "tools", "build.ts"), "--target", "linux-x64"], { stdio: "inherit" });
if (build.status !== 0) process.exit(1);

const h = await startSoakWorld({ profile: o.profile });
let exitCode = 1;
let agents = new Map<number, Agent>();
const stranger = spawn("sleep", ["3600"], { stdio: "ignore" });
try {
  const neighbours = await makeNeighbours(h);
  await h.world.gh.resetRequests();
  const secrets = new SecretWatch();
  secrets.add("GitHub App key", h.world.github.app.privateKeyPem);
  secrets.add("PAT", h.world.github.pat);
  secrets.addFile("SSH key", h.world.sshKeyPath);
  if (h.world.registry) secrets.add("registry password", h.world.registry.password);
  const tokenCache = stateFiles.tokens(h.stateDir);
  const argv = watchArgv(secrets, h.host.tartHome);

  const injected: Injected[] = [];
  const spawns: Spawn[] = [];
  const injector = new Injector(h, () => agents, stranger.pid!);
  const markSignalled = (slots: number[]) => {
    for (const slot of slots) {
      const last = spawns.filter((s) => s.slot === slot).at(-1);
      if (last) last.signalledBySoak = true;
    }
  };
  const directors = new Map<number, Director>(SLOTS.map((slot) => [slot, new Director(slot, h, new Deck(rng(o.seed, 100 + slot), slot, o.rate), injector, injected, spawns, markSignalled)]));
  const feeder = startFeeder(h, rng(o.seed, 1), o.jobs);
  say(`soak: world up (${h.world.dir}); neighbours ${neighbours.length} objects; starting the two slot agents`);
  agents = startAgents(h, (slot) => ({
    onSpawn: (pid) => directors.get(slot)!.onSpawn(pid),
    onExit: (code, sig) => directors.get(slot)!.onExit(code, sig),
  }));

  const ourJobs = async () => (await h.world.gh.state()).jobs.filter((j) => j.labels.includes(PREFIX) && /^soak-\d+$/.test(j.name));
  let lastShown = 0;
  const watchJitConfigs = async () => {
    for (const c of await h.world.gh.jitConfigs()) secrets.addJitConfig(c.encoded_jit_config);
  };
  for (;;) {
    secrets.addCachedTokens(tokenCache);
    await watchJitConfigs();
    const jobs = await ourJobs();
    const done = jobs.filter((j) => j.status === "completed").length;
    if (feeder.allQueued() && done === o.jobs) break;
    if (Date.now() - started > o.deadlineMs) {
      say(`soak: deadline of ${o.deadlineMs / 60_000} min reached with ${done}/${o.jobs} jobs done`);
      break;
    }
    if (Date.now() - lastShown > 15_000) {
      lastShown = Date.now();
      say(`soak: ${Math.round((Date.now() - started) / 1000)} s: ${done}/${o.jobs} jobs done, ${feeder.queued.length} queued so far, ${injected.length} faults injected, ${spawns.length} spawns`);
    }
    await sleep(500);
  }
  feeder.stop();
  const unplayed = [...directors.values()].flatMap((d) => d.unplayed.map((c) => `slot ${d.slot}: ${c}`));
  for (const d of directors.values()) d.stop();
  injector.tart.clear();
  await h.world.gh.clearFaults();
  const jobs = await ourJobs();
  const unfinished = jobs.filter((j) => j.status !== "completed");
  const { vmsLeft, apiCalls, after, listed, output } = await finish(h, agents, say);
  argv.stop();
  secrets.addCachedTokens(tokenCache);
  await watchJitConfigs();

  const logFiles = readdirSync(h.logDir).filter((f) => f.endsWith(".log"));
  const logText = [...logFiles.map((f) => ({ file: f, text: readFileSync(join(h.logDir, f), "utf8") })), ...output];
  const lines: LogLine[] = logText.flatMap(({ text }) => parseLogLines(text));
  const vmDir = (name: string) => join(h.host.tartHome, "vms", name, "config.json");
  const rows = measure({
    jobs, unfinished, injected, spawns, lines, logText,
    runs: existsSync(h.runsFile) ? readFileSync(h.runsFile, "utf8") : "",
    vmsLeft, vmsLeftAfterNextStart: listed.map((v) => v.Name).filter(ours),
    runnersLeft: after.runners.filter((r) => ours(r.name)),
    neighbours,
    neighboursNow: {
      vms: new Map(listed.map((v) => [v.Name, { running: v.Running, mtimeMs: existsSync(vmDir(v.Name)) ? statSync(vmDir(v.Name)).mtimeMs : undefined }])),
      runnerIds: new Set(after.runners.map((r) => r.id)),
    },
    findSecrets: (t) => secrets.find(t),
    argvLeaks: argv.leaks, argvSamples: argv.samples(), apiCalls,
  });
  const nextStart = after.jobs.filter((j) => j.name.startsWith("next-start-"));
  const wallS = (Date.now() - started) / 1000;
  const byCard = new Map<string, { applied: number; missed: number }>();
  for (const i of injected) {
    const c = byCard.get(i.card) ?? { applied: 0, missed: 0 };
    c[i.applied ? "applied" : "missed"]++;
    byCard.set(i.card, c);
  }
  say("");
  say(`soak: npm run soak -- --seed ${o.seed} --jobs ${o.jobs} --profile ${o.profile}`);
  say(table(rows, { seed: o.seed, wallS, faults: injected.filter((i) => i.applied).length }));
  say("");
  say(`faults (applied/not applicable when played): ${[...byCard].sort().map(([k, c]) => `${k} ${c.applied}${c.missed ? `/${c.missed}` : ""}`).join(", ")}`);
  const seen = (events: string[], match?: RegExp) => lines.filter((l) => events.includes(l.event) && (!match || match.test(l.msg ?? ""))).length;
  const reactions = Object.entries(REACTIONS).map(([what, [events, match]]) => `${what} ${seen(events, match)}`);
  say(`what the slots did about it (log events): ${reactions.join(", ")}`);
  if (unplayed.length > 0) say(`drawn but never played (their phase did not come before the end): ${unplayed.join(", ")}`);
  say(`next start: ${nextStart.map((j) => `${j.name} ${j.result ?? j.status}`).join(", ")}`);
  for (const l of rows.lostOurs) say(`LOST: ${l.job} on ${l.runner ?? "no runner"}: ${l.why}`);
  for (const t of rows.neighbourTouched) say(`NEIGHBOUR: ${t}`);
  for (const l of rows.logLeaks) say(`SECRET in ${l.file}: ${l.secrets.join(", ")}`);
  for (const l of argv.leaks) say(`SECRET in argv of ${l.program}: ${l.secrets.join(", ")}`);
  if (rows.vmsLeaked) say(`VMs leaked: ${[...new Set([...vmsLeft, ...listed.map((v) => v.Name).filter(ours)])].join(", ")}`);
  if (rows.runnersLeaked) say(`runners leaked: ${after.runners.filter((r) => ours(r.name)).map((r) => `${r.name} (${r.status}${r.busy ? ", busy" : ""})`).join(", ")}`);
  if (o.report) {
    writeFileSync(o.report, `${JSON.stringify({ seed: o.seed, jobs: o.jobs, profile: o.profile, faultRate: o.rate, wallS, rows, faults: Object.fromEntries(byCard), unplayed, reactions, injected, spawns, nextStart, jobsDetail: jobs }, null, 2)}\n`);
    say(`soak: report written to ${o.report}`);
  }
  const nextOk = nextStart.length === SLOTS.length && nextStart.every((j) => j.result === "Succeeded");
  exitCode = clean(rows) && nextOk ? 0 : 1;
  say(exitCode === 0 ? "soak: OK (every must-be-0 row is 0)" : "soak: FAILED (see above)");
} catch (err) {
  say(`soak: ${(err as Error).stack ?? err}`);
} finally {
  stranger.kill();
  await Promise.all([...agents.values()].map((a) => a.bootout().catch(() => undefined)));
  if (o.logs) {
    cpSync(join(h.world.dir, "soak"), o.logs, { recursive: true });
    say(`soak: logs and state copied to ${o.logs}`);
  }
  await h.world.stop();
}
process.exit(exitCode);
