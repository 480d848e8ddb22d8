// The demo (`npm start`): the real compiled `loop` on two slots, driven the
// way launchd drives it, against the simulated world, until a handful of
// queued jobs are done. Progress comes from the slots' state files (what
// `status` reads); the `status` table ends it. Exits 0 only if every job ran
// once and nothing leaked. `npm start -- --rollout`: halfway through, image v2
// is pushed and the compiled `pull` pins it; the later jobs show which image
// they ran on.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../lib/config/index.ts";
import { tartFor } from "../lib/slot/context.ts";
import { readSlotView } from "../lib/host/slot-view.ts";
import { gatherStatus, renderStatus } from "../lib/host/status.ts";
import { renderAgents } from "../lib/host/launchd/render.ts";
import { startAgent, type Agent } from "./launchd.ts";
import { followLogs, type LogLine } from "./logs.ts";
import { IMAGE_MARKER } from "./image/fixture.ts";
import { startWorld } from "./world.ts";
import type { TraceEvent } from "./tart/trace.ts";

const JOBS = Number(process.env.DEMO_JOBS ?? 6);
const ROLLOUT = process.argv.slice(2).includes("--rollout");
const SLOTS = 2;
const DEADLINE_MS = 5 * 60_000;
const root = join(import.meta.dir, "..");
const binDir = join(root, "dist", "linux-x64");

const say = (line: string) => process.stdout.write(`${line}\n`);
/** What launchd gives an agent in a user's session, before the plist's own variables. */
const sessionEnv = () => Object.fromEntries(["HOME", "USER", "LOGNAME", "SHELL", "TMPDIR"].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));

say("demo: building the macos-runner binary (bun build --compile, linux-x64; loop is a link to it) ...");
const build = spawnSync(process.execPath, [join(root, "tools/build.ts"), "--target", "linux-x64"], { stdio: "inherit" });
if (build.status !== 0) process.exit(1);

say("demo: starting the simulated world (GitHub, registry, tart, guests) ...");
const world = await startWorld({ registry: "optional" });
const rollout = ROLLOUT && world.registry !== undefined;
if (ROLLOUT && !rollout) say("demo: notice: no registry, so no rollout (the image is a local VM); running the plain demo");
let exitCode = 1;
const agents: Agent[] = [];
try {
  const configPath = world.writeConfig({ host: { slots: SLOTS } });
  // The guests trace every connection to them: Local Network is withheld (the sim's default).
  const tracePath = join(world.dir, "tart-trace.jsonl");
  const config = loadConfig({ path: configPath });
  const plistDir = join(world.dir, "LaunchAgents");
  mkdirSync(plistDir, { recursive: true });
  // As `install` does: launchd creates neither the log dir nor the working directory.
  for (const dir of [config.host.logDir, config.host.stateDir]) mkdirSync(dir, { recursive: true });
  const rendered = renderAgents({ binDir, configPath, slots: SLOTS, logDir: config.host.logDir, stateDir: config.host.stateDir, jobTimeoutMs: config.runner.jobTimeoutMs, pull: false });

  const pullArgs = ["--config", configPath];
  const runPull = (why: string) => {
    const r = spawnSync(join(binDir, "pull"), pullArgs, { env: { ...process.env, ...world.env }, encoding: "utf8" });
    const pinnedLine = r.stderr.split("\n").find((l) => l.includes('"event":"pull.pinned"'));
    say(`demo: pull (${why}): exit ${r.status}${pinnedLine ? `, ${JSON.parse(pinnedLine).msg}` : ""}`);
    if (r.status !== 0) throw new Error(`pull failed: ${r.stderr.trim()}`);
  };
  const enqueue = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) {
      await world.gh.enqueueJob({
        name: `build-ios-app #${i}`,
        labels: ["self-hosted", "macOS", "ARM64"],
        // Proves each job gets a fresh VM: a file the previous job left would fail it.
        // Prints the image it ran on: v1 has no marker file.
        script: `test ! -e "$HOME/left-by-previous-job" || { echo "dirty VM"; exit 1; }; touch "$HOME/left-by-previous-job"; echo "image $(cat "$HOME/${IMAGE_MARKER}" 2>/dev/null || echo v1)"; echo "xcodebuild -scheme App #${i}: ok"`,
      });
    }
  };
  if (rollout) runPull("pins v1 before the slots start");
  const firstBatch = rollout ? Math.ceil(JOBS / 2) : JOBS;
  await enqueue(1, firstBatch);
  say(`demo: ${firstBatch} jobs queued; starting ${SLOTS} slots (launchd-style agents running ${join("dist", "linux-x64", "loop")})`);

  const phases = new Map<string, number[]>();
  // Step times for the summary come from the logs; progress from the state files.
  const record = (l: LogLine) => {
    const phase = { "token.done": "token", "clone.done": "clone", "boot.done": "boot", "run.done": "run", "cleanup.done": "cleanup", "cycle.done": "cycle" }[l.event];
    if (phase && typeof l.duration_ms === "number") phases.set(phase, [...(phases.get(phase) ?? []), l.duration_ms]);
  };
  const logs = followLogs([...rendered].map((a) => a.plist.StandardErrorPath!).filter(Boolean), record);
  const shown = new Map<number, string>();
  const showProgress = () => {
    for (let slot = 1; slot <= SLOTS; slot++) {
      const r = readSlotView(config.host.stateDir, slot);
      if (r.kind !== "ok") continue;
      const v = r.view;
      const what = v.phase === "done" || v.phase === "failed"
        ? `${v.phase}${v.job ? `  job "${v.job}": ${v.job_result ?? "no result"}` : ""}${v.last_error ? `  (${v.last_error})` : ""}`
        : `${v.phase}${v.vm ? `  ${v.vm}` : ""}${v.runner_id ? `  runner #${v.runner_id}` : ""}`;
      if (shown.get(slot) !== what) {
        shown.set(slot, what);
        say(`slot ${slot}  ${what}`);
      }
    }
  };
  const progress = setInterval(showProgress, 100);

  for (const a of rendered) {
    const path = join(plistDir, a.fileName);
    writeFileSync(path, a.xml);
    agents.push(startAgent(path, { env: { ...sessionEnv(), ...world.env, SIM_TART_TRACE: tracePath } }));
  }

  const deadline = Date.now() + DEADLINE_MS;
  if (rollout) {
    while ((await world.gh.state()).jobs.filter((j) => j.status === "completed").length < firstBatch) {
      if (Date.now() > deadline) throw new Error("demo: the first jobs are not done in time");
      await new Promise((r) => setTimeout(r, 250));
    }
    const v2 = await world.publishVersion({ marker: "v2", runnerVersion: "2.336.0" });
    say(`demo: pushed image v2 (${v2.digest.slice(0, 19)}) under the same tag`);
    runPull("picks v2 up while the slots keep serving");
    await enqueue(firstBatch + 1, JOBS);
    say(`demo: ${JOBS - firstBatch} more jobs queued; slots clone v2 from their next cycle (a slot already listening on a v1 VM serves one more job on v1)`);
  }
  let state = await world.gh.state();
  while (state.jobs.some((j) => j.status !== "completed")) {
    if (Date.now() > deadline) throw new Error(`demo: jobs still not done after ${DEADLINE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
    state = await world.gh.state();
  }
  say("demo: all jobs done; uninstalling as `install --remove` does: bootout (idle slots take their runner off GitHub, clean up, exit), then `cleanup` per slot ...");
  await Promise.all(agents.map((a) => a.bootout()));
  for (let slot = 1; slot <= SLOTS; slot++) {
    const c = spawnSync(join(binDir, "cleanup"), ["--slot", String(slot), "--config", configPath], { env: { ...process.env, ...world.env }, encoding: "utf8" });
    if (c.status !== 0) throw new Error(`cleanup --slot ${slot} failed: ${c.stderr.trim()}`);
  }
  clearInterval(progress);
  showProgress();
  logs.stop();

  state = await world.gh.state();
  const vmsLeft = spawnSync("tart", ["list", "--format", "json", "--source", "local"], { env: { ...process.env, ...world.env }, encoding: "utf8" });
  const leftVms = (JSON.parse(vmsLeft.stdout || "[]") as { Name: string }[]).filter((v) => v.Name.startsWith(config.runner.namePrefix));
  const jobsOnce = state.jobs.filter((j) => j.status === "completed").length;
  const succeeded = state.jobs.filter((j) => j.result === "Succeeded").length;
  const api = Object.entries(state.requests.byEndpoint).filter(([k]) => !/ \/_(sim|broker)\//.test(k));
  const apiTotal = api.reduce((n, [, c]) => n + c, 0);
  const jit = api.filter(([k]) => k.includes("generate-jitconfig")).reduce((n, [, c]) => n + c, 0);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

  say("");
  say("summary");
  say(`  jobs done            ${jobsOnce}/${JOBS} (${succeeded} succeeded, each once, each on a fresh VM)`);
  say(`  VMs left             ${leftVms.length}`);
  say(`  runners left         ${state.runners.length}`);
  say(`  GitHub API calls     ${apiTotal} for ${JOBS} jobs (${(apiTotal / JOBS).toFixed(2)} per job; JIT configs: ${jit})`);
  for (const [endpoint, count] of api.sort()) say(`    ${String(count).padStart(3)}  ${endpoint}`);
  say(`  per-phase median     ${[...phases].map(([p, xs]) => `${p} ${median(xs)} ms`).join(", ")}`);
  const onImage = (v: string) => state.jobs.filter((j) => j.output?.includes(`image ${v}`)).map((j) => j.name.replace(/^.*#/, "#"));
  if (rollout) say(`  rollout              on v1: ${onImage("v1").join(" ")}; on v2: ${onImage("v2").join(" ")}`);
  const rolledOut = !rollout || onImage("v2").length > 0;
  const traced = existsSync(tracePath) ? readFileSync(tracePath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as TraceEvent) : [];
  const connections = traced.filter((r) => r.kind === "guest" && (r.event === "connect" || r.event === "refused"));
  const ours = connections.filter((c) => c.kind === "guest" && c.ours);
  say(`  transport            ${config.vm.transport}; Local Network withheld; connections of ours (or of an ssh it started) to a guest: ${ours.length}`);
  const ok = jobsOnce === JOBS && succeeded === JOBS && leftVms.length === 0 && state.runners.length === 0 && rolledOut && ours.length === 0;
  say("");
  say("status (what `status` prints on a host)");
  process.stdout.write(renderStatus(await gatherStatus({ config, tart: tartFor(config) })).replace(/^(?=.)/gm, "  "));
  say(ok ? "demo: OK" : "demo: FAILED (see above)");
  exitCode = ok ? 0 : 1;
} catch (err) {
  say(`demo: ${(err as Error).message}`);
} finally {
  await Promise.all(agents.map((a) => a.bootout().catch(() => undefined)));
  await world.stop();
}
process.exit(exitCode);
