#!/usr/bin/env bun
// npm run bench: the compiled `loop` (under the launchd-like supervisor)
// against bench/baseline.sh, the plain bash loop, in one simulated world and
// on one simulated Mac, in alternating blocks (loop, baseline, loop, …) of a
// few jobs each, until each side has --cycles turnarounds. Prints the tables
// bench/README.md explains. Not part of `npm test`. `--scenario idle` runs
// bench/idle.ts instead: an idle host while GitHub retires idle runners.
//   npm run bench -- --profile scaled
//   npm run bench -- --profile realistic --scale 0.25 --path snapshot
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { SIM_BIN } from "../sim/image/fixture.ts";
import { resolveSettings } from "../sim/tart/settings.ts";
import { startWorld } from "../sim/world.ts";
import { ensureBinaries, until, worldEnv } from "../tests/helpers/e2e.ts";
import { baselineContender, loopContender, type Contender, type Stage } from "./contenders.ts";
import { idleBench } from "./idle.ts";
import { cycles, readTrace, tartCpuMs } from "./measure.ts";
import { BenchUsageError, parseOptions, USAGE, type BenchOptions } from "./options.ts";
import { machine, render, type SideResult } from "./report.ts";
import { startupTimes } from "./startup.ts";

const total = (calls: Record<string, number> | undefined) => Object.values(calls ?? {}).reduce((a, b) => a + b, 0);

/** One block: the contender serves `o.block` jobs; measured once every job is done and each slot listens again. */
async function block(stage: Stage, c: Contender, n: number): Promise<SideResult> {
  const { world, dir, o } = stage;
  const tracePath = join(dir, `trace-${c.name}-${n}.jsonl`);
  const before = await world.gh.state();
  const since = Date.now();
  c.start(tracePath);
  const jobs = [];
  for (let i = 0; i < o.block; i++) jobs.push(await world.gh.enqueueJob({ name: `${c.name}-${n}-${i}`, labels: [c.label], script: `sleep ${o.jobMs / 1000}` }));
  const ids = new Set(jobs.map((j) => j.id));
  const ready = await until(`${c.name} block ${n}: every job done and each slot listening again`, async () => {
    const s = await world.gh.state();
    const mine = s.events.filter((e) => e.at_ms >= since && c.slotOf(e.runner) !== undefined);
    const done = mine.filter((e) => e.kind === "job-completed" && e.job !== undefined && ids.has(e.job));
    const relisted = done.every((d) => mine.some((e) => e.kind === "session-opened" && e.at_ms > d.at_ms && c.slotOf(e.runner) === c.slotOf(d.runner)));
    return done.length === ids.size && relisted && s;
  }, 15 * 60_000, 100);
  const cost = await c.stop();
  const events = ready.events.filter((e) => e.at_ms >= since && c.slotOf(e.runner) !== undefined);
  const trace = readTrace(tracePath);
  return {
    cycles: cycles(events, trace, c.slotOf),
    jobs: jobs.length,
    jobsFailed: ready.jobs.filter((j) => ids.has(j.id) && j.result !== "Succeeded").length,
    sessions: events.filter((e) => e.kind === "session-opened").length,
    steadySessions: events.filter((e) => e.kind === "session-opened").length,
    steadyApiCalls: total(ready.requests.byAccount[c.org]) - total(before.requests.byAccount[c.org]),
    hostCpuMs: cost.treeCpuMs - tartCpuMs(trace, cost.pids),
    selfCpuMs: cost.selfCpuMs,
    peakRssKb: cost.peakRssKb,
    unreaped: cost.unreaped,
  };
}

function add(a: SideResult, b: SideResult): SideResult {
  return {
    cycles: [...a.cycles, ...b.cycles],
    jobs: a.jobs + b.jobs,
    jobsFailed: a.jobsFailed + b.jobsFailed,
    sessions: a.sessions + b.sessions,
    steadySessions: a.steadySessions + b.steadySessions,
    steadyApiCalls: a.steadyApiCalls + b.steadyApiCalls,
    hostCpuMs: a.hostCpuMs + b.hostCpuMs,
    selfCpuMs: a.selfCpuMs + b.selfCpuMs,
    peakRssKb: Math.max(a.peakRssKb, b.peakRssKb),
    unreaped: a.unreaped + b.unreaped,
  };
}

const EMPTY: SideResult = { cycles: [], jobs: 0, jobsFailed: 0, sessions: 0, steadySessions: 0, steadyApiCalls: 0, hostCpuMs: 0, selfCpuMs: 0, peakRssKb: 0, unreaped: 0 };

async function bench(o: BenchOptions): Promise<void> {
  ensureBinaries(["loop", "cleanup"]);
  const loadBefore = loadavg()[0]!;
  const world = await startWorld({ registry: "optional", github: { orgs: ["bench-loop", "bench-base"] }, notice: (l) => console.error(l) });
  try {
    const host = world.addHost("bench", { profile: o.profile, scale: o.scale });
    const dir = join(world.dir, "bench");
    mkdirSync(dir, { recursive: true });
    const stage: Stage = { world, host, dir, o };
    const sides = [loopContender(stage), baselineContender(stage)];
    // An interrupted bench leaves no loop or bash behind (the world kills the VMs).
    const killAll = () => sides.forEach((c) => c.kill());
    process.on("exit", killAll);
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));
    const results = [EMPTY, EMPTY];
    const blocks = Math.ceil(o.cycles / o.block);
    for (let n = 0; n < blocks; n++) {
      for (const [i, c] of sides.entries()) {
        const r = await block(stage, c, n);
        // The first block pays one-off calls (installation token, first-start sweep): API calls count from the second.
        results[i] = add(results[i]!, n === 0 && blocks > 1 ? { ...r, steadyApiCalls: 0, steadySessions: 0 } : r);
        console.error(`bench: ${c.name} block ${n + 1}/${blocks}: turnarounds ${r.cycles.map((x) => Math.round(x.turnaroundMs)).join(" ")} ms (load ${loadavg()[0]!.toFixed(1)})`);
      }
    }
    const startup = startupTimes({ ...worldEnv(world), ...host.env }, join(SIM_BIN, "tart"));
    const [loop, base] = results as [SideResult, SideResult];
    const times = resolveSettings(JSON.parse(readFileSync(host.env.SIM_TART_CONFIG!, "utf8")));
    const table = render(o, times, machine(loadBefore), loop, base, startup);
    console.log(table);
    if (o.out) writeFileSync(o.out, `${JSON.stringify({ options: o, loop, baseline: base, startup }, null, 2)}\n`);
    if (o.keep) {
      cpSync(dir, o.keep, { recursive: true });
      writeFileSync(join(o.keep, "github-events.json"), JSON.stringify((await world.gh.state()).events));
    }
  } finally {
    await world.stop();
  }
}

if (import.meta.main) {
  try {
    const o = parseOptions(process.argv.slice(2));
    await (o.scenario === "idle" ? idleBench(o) : bench(o));
  } catch (err) {
    if (err instanceof BenchUsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`bench: ${(err as Error).message}\n${USAGE}`);
      process.exit(64);
    }
    throw err;
  }
}
