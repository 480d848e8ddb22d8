// The in-process cycle tier: the slot's own code (lib/slot, lib/vm,
// lib/runner) runs in this process against MemoryTart (a model of tart that
// passes the same contract suite as the fake tart binary, tests/contract),
// the simulated GitHub (its HTTP API, in this process) and a FakeClock, so
// waits of minutes take milliseconds and happen the same way every time.
// The guest's runner is `runnerGuest`: it takes jobs from the simulated
// GitHub's broker as the fake actions runner does, and runs a job's script
// (`sleep N`, `exit N`) on the clock. What needs a real process (the
// compiled binary, signals, launchd, ssh) stays in tests/e2e.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { loadConfig, type Config } from "../../lib/config/index.ts";
import { hostId, slotNames } from "../../lib/config/names.ts";
import { createLogger } from "../../lib/core/log.ts";
import { stopController, type Stop } from "../../lib/core/signals.ts";
import type { SlotContext } from "../../lib/slot/context.ts";
import { loop } from "../../lib/slot/loop.ts";
import { startGitHub, type GitHubSim, type GitHubSimOptions } from "../../sim/github/server.ts";
import type { Runner } from "../../sim/github/runners.ts";
import type { JobState } from "../../sim/github/types.ts";
import { parseLogLines, type LogLine } from "../../sim/logs.ts";
import { MemoryTart, defaultGuest, type GuestModel, type MemoryTartSettings } from "../../sim/tart/memory.ts";
import { deepMerge, type Tree } from "../../sim/world.ts";
import { FakeClock } from "../helpers/clock.ts";

export { events } from "../../sim/logs.ts";

export const IMAGE = "registry.example.test/macos/runner:latest";
const ORG = "acme";

export interface CycleHost {
  clock: FakeClock;
  tart: MemoryTart;
  github: GitHubSim;
  config: Config;
  /** runner.name_prefix, also the label every job of this host carries. */
  prefix: string;
  /** Every log line of every loop run on this host, in order. */
  lines: LogLine[];
  /** Queues a job only this host's runners can take. */
  enqueue(name: string, script?: string): JobState;
  job(id: number): JobState;
  /** The slot's state file as written. */
  state(slot?: number): Record<string, unknown>;
  /** The slot's metrics file (node_exporter textfile). */
  metrics(slot?: number): string;
  /** One `loop` of a slot (one process's life on a Mac), driven on the clock until it returns. */
  loop(o?: { slot?: number; stop?: Stop; maxMs?: number }): Promise<{ code: number; lines: LogLine[] }>;
  /** The slot's context as openSlot makes it, on this host's clock, tart and log. */
  context(slot?: number): SlotContext;
  close(): Promise<void>;
  // Acting at a point of the cycle (portdrain).
  /** The next line of `event` any loop of this host logs; resolved as it is written, so the test acts at that point of the cycle. */
  when(event: string): Promise<LogLine>;
}

export interface CycleHostOptions {
  /** Config overrides, deep-merged (null deletes a key). */
  config?: Tree;
  tart?: Partial<MemoryTartSettings>;
  github?: GitHubSimOptions;
  /** The guest's answers to anything but the runner (default: readiness and the clock sync only). */
  guest?: GuestModel;
  /** The guest's runner, given the model of it (runnerGuest) to wrap, e.g. one that starts late (runnerThat). */
  runner?: (real: GuestModel, clock: FakeClock) => GuestModel;
}

export async function cycleHost(o: CycleHostOptions = {}): Promise<CycleHost> {
  const dir = mkdtempSync(join(tmpdir(), "cycle-"));
  const clock = new FakeClock();
  const github = await startGitHub({ orgs: [ORG], validate: true, assignDelayMs: 0, ...o.github });
  const guests = o.guest ?? defaultGuest;
  const runner: GuestModel = (command, stdin, io) => (o.runner ? o.runner(runnerGuest(github, clock), clock) : runnerGuest(github, clock))(command, stdin, io);
  const guest: GuestModel = (command, stdin, io) => (RUN_SH.test(command) ? runner(command, stdin, io) : guests(command, stdin, io));
  const tart = new MemoryTart({ clock, guest, home: join(dir, "tart"), settings: o.tart ?? {} });
  tart.publish(IMAGE);
  const stateDir = join(dir, "state");
  const logDir = join(dir, "logs");
  for (const d of [stateDir, logDir]) mkdirSync(d, { recursive: true });
  const keyPath = join(dir, "app.pem");
  writeFileSync(keyPath, github.app.privateKeyPem, { mode: 0o600 });
  const installation = github.app.installations.find((i) => i.account === ORG)!;
  const prefix = "cyc";
  const path = join(dir, "config.yml");
  writeFileSync(path, stringify(deepMerge({
    github: { url: `${github.url}/${ORG}`, api_url: github.url, app: { id: github.app.id, installation_id: installation.id, private_key_path: keyPath } },
    runner: { name_prefix: prefix, labels: ["self-hosted", "macOS", "ARM64", prefix] },
    image: { ref: IMAGE },
    vm: { transport: "exec" },
    metrics: { textfile_dir: join(dir, "metrics") },
    host: {
      slots: 2, tart_path: "/usr/local/bin/tart", state_dir: stateDir, log_dir: logDir, dhcp_leases_path: tart.leasesFile,
      backoff_initial: "10s", backoff_max: "5m",
    },
  }, o.config ?? {})));
  const config = loadConfig({ path });
  const lines: LogLine[] = [];
  // The product's HTTP to the fake GitHub is real I/O: time must not move while a call is on the way
  // (a deadline would pass under a request that takes a few real ms).
  const realFetch = globalThis.fetch;
  globalThis.fetch = Object.assign((...args: Parameters<typeof fetch>) => clock.hold(realFetch(...args)), realFetch);
  const watchers: { event: string; seen(line: LogLine): void }[] = [];

  const context = (slot = 1): SlotContext => {
    let buffered = "";
    const stream = new Writable({
      write(chunk, _enc, cb) {
        buffered += String(chunk);
        const end = buffered.lastIndexOf("\n") + 1;
        const written = parseLogLines(buffered.slice(0, end));
        lines.push(...written);
        for (const line of written) for (const w of watchers.filter((w) => w.event === line.event)) w.seen(line);
        buffered = buffered.slice(end);
        cb();
      },
    });
    const log = createLogger({ stream, format: "json", fields: { slot } });
    return { config, slot, log, tart, clock, names: slotNames(config.runner.namePrefix, slot, hostId(config.host.id, config.host.stateDir)) };
  };

  return {
    clock, tart, github, config, prefix, lines,
    enqueue: (name, script = "exit 0") => github.world.broker.enqueue({ name, labels: [prefix], script }),
    job: (id) => {
      const job = github.world.broker.jobs.find((j) => j.id === id);
      if (!job) throw new Error(`no job ${id} in the simulated GitHub`);
      return job;
    },
    async loop({ slot = 1, stop = stopController(), maxMs = 3_600_000 } = {}) {
      const from = lines.length;
      const code = await clock.settle(loop(context(slot), stop), { maxMs });
      return { code, lines: lines.slice(from) };
    },
    state: (slot = 1) => JSON.parse(readFileSync(join(stateDir, `slot-${slot}.json`), "utf8")) as Record<string, unknown>,
    metrics: (slot = 1) => readFileSync(join(dir, "metrics", `macos_runner_slot_${slot}.prom`), "utf8"),
    context,
    when: (event) => new Promise((resolve) => {
      const w = { event, seen: (line: LogLine) => (watchers.splice(watchers.indexOf(w), 1), resolve(line)) };
      watchers.push(w);
    }),
    async close() {
      globalThis.fetch = realFetch;
      tart.dispose();
      await github.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What lib/runner/run.ts runs in the guest: the runner's run.sh, the JIT config on stdin. */
const RUN_SH = /exec \.\/run\.sh$/;

/** The runner's timestamp prefix, as the status-line parser in lib/runner/run.ts expects it. */
const stamp = (clock: FakeClock) => `${new Date(clock.now()).toISOString().replace("T", " ").slice(0, 19)}Z: `;

/**
 * The actions runner in the guest, as the fake actions runner behaves
 * (sim/guest/actions-runner), on the in-process broker: connects with the
 * JIT config's runner, listens, runs one job's script on the clock, reports
 * it and exits; a runner GitHub removed says so and exits.
 */
function runnerGuest(github: GitHubSim, clock: FakeClock): GuestModel {
  return async (_command, stdin, io) => {
    const files = JSON.parse(Buffer.from(stdin.trim(), "base64").toString("utf8")) as Record<string, string>;
    const { agentId } = JSON.parse(Buffer.from(files[".runner"]!, "base64").toString("utf8")) as { agentId: number };
    const { broker, registry } = github.world;
    const gone = () => {
      io.stderr("The runner no longer exists on the server. Cleaning up local configuration.\n");
      return 0;
    };
    io.stdout("√ Connected to GitHub\n");
    const runner = registry.runners.get(agentId);
    if (!runner) {
      // As the fake runner: removed before its session opened, it keeps its files and exits 1.
      io.stderr("The runner no longer exists on the server. Please reconfigure the runner.\n");
      return 1;
    }
    const session = broker.open(runner, { os: "macOS" });
    io.stdout(`${stamp(clock)}Listening for Jobs\n`);
    listeningHooks.get(github)?.(runner);
    for (;;) {
      if (io.signal.aborted) return 143;
      // As the broker's poll route: a runner deleted meanwhile is answered 404, never handed a job.
      if (registry.runners.get(agentId) !== runner) return gone();
      const outcome = await clock.hold(broker.poll(session, 50, io.signal));
      if (outcome === "gone") return gone();
      if (outcome === "timeout") {
        await clock.sleep(1_000, io.signal);
        continue;
      }
      io.stdout(`${stamp(clock)}Running job: ${outcome.name}\n`);
      const sleepS = /sleep (\d+)/.exec(outcome.script)?.[1];
      if (sleepS) await clock.sleep(Number(sleepS) * 1000, io.signal);
      if (io.signal.aborted) return 143;
      const exitCode = Number(/exit (\d+)/.exec(outcome.script)?.[1] ?? 0);
      const result = exitCode === 0 ? "Succeeded" : "Failed";
      broker.complete(session, outcome.id, { result, exit_code: exitCode, output: "" });
      io.stdout(`${stamp(clock)}Job ${outcome.name} completed with result: ${result}\n`);
      return 0;
    }
  };
}

// ---- A runner that starts late, and slots that run at once ----

/** Wraps the runner model (CycleHostOptions.runner): it starts `startsAfterMs` after run.sh, as the fake runner's runner_start_ms. */
export function runnerThat(o: { startsAfterMs: number }): (real: GuestModel, clock: FakeClock) => GuestModel {
  return (real, clock) => async (command, stdin, io) => {
    await clock.sleep(o.startsAfterMs, io.signal);
    return io.signal.aborted ? 143 : real(command, stdin, io);
  };
}

/** One `loop` of each slot, all at once on the host's clock (two launchd agents); each loop's exit and log lines. */
export async function loopsAtOnce(h: CycleHost, slots: number[], maxMs = 3_600_000): Promise<{ code: number; lines: LogLine[] }[]> {
  const from = h.lines.length;
  const codes = await h.clock.settle(Promise.all(slots.map((slot) => loop(h.context(slot), stopController()))), { maxMs });
  const lines = h.lines.slice(from);
  return codes.map((code, i) => ({ code, lines: lines.filter((l) => l.slot === slots[i]) }));
}

// ---- GitHub acting on a listening runner at a chosen moment (idle retirement) ----

/** Per host (its simulated GitHub): what a test does when a runner model starts listening. */
const listeningHooks = new WeakMap<GitHubSim, (runner: Runner) => void>();

/**
 * Calls `fn` each time a runner model on this host starts listening (it
 * printed "Listening for Jobs" and has not polled yet), with the broker's
 * runner and its number on this host (1 for the first): the moment to have
 * GitHub retire it (retireIdle), queue a job, pin an image or stop the slot.
 */
export function onListening(h: CycleHost, fn: (runner: Runner, nth: number) => void): void {
  let nth = 0;
  listeningHooks.set(h.github, (runner) => fn(runner, ++nth));
}

/**
 * GitHub removing an idle JIT runner on its own (broker.retire; on github.com
 * minutes after it registered, on real time in the fake GitHub), `afterMs` of
 * the host's clock from now: only if it is still registered and has no job then.
 */
export function retireIdle(h: CycleHost, runner: Runner, afterMs = 0): void {
  const { broker, registry } = h.github.world;
  const retire = () => {
    if (registry.runners.get(runner.id) === runner && !runner.busy) broker.retire(runner);
  };
  if (afterMs === 0) return retire();
  void h.clock.sleep(afterMs).then(retire);
}

/**
 * Calls `fn` once, in the turn the first runner's long-poll is open: GitHub
 * can hand it a job then and there, before the runner prints anything.
 * Watched every real ms (the moment is the broker's, not the clock's); the
 * returned function stops watching.
 */
export function whenPolling(h: CycleHost, fn: (runner: Runner) => void): () => void {
  const { broker, registry } = h.github.world;
  let called = false;
  const watch = setInterval(() => {
    const runner = [...registry.runners.values()][0];
    if (called || !runner || !(broker.sessionOf(runner)?.openPolls ?? 0)) return;
    called = true;
    fn(runner);
  }, 1);
  return () => clearInterval(watch);
}
