// One cycle of a slot, from a fresh VM to its one job done (docs/architecture.md):
//   VM: the next VM (or a clone) -> tart run -> address -> ready ┐ token starts once
//   token: the JIT runner (1 API call)                           ┘ the VM is alive
//   run.sh over vm.transport -> listening -> one job -> completed
import { startRun, type RunHandle, type RunOutcome } from "../runner/run.ts";
import { MacosRunnerError, StateIoError } from "../core/errors.ts";
import { GitHubError } from "../github/errors.ts";
import { token, type JitConfig } from "../github/runners.ts";
import { type ImageChoice, imageToClone, inspectImageLock } from "../image/pin.ts";
import { cachedDigest } from "../vm/tart-cache.ts";
import { aborted } from "../core/signals.ts";
import { cleanSlot, removeRunner } from "./clean.ts";
import { cloneNextVm, cycleVm, disposeOld, keepAsNextVm } from "./next-vm.ts";
import type { SlotRun } from "./context.ts";
import { adopt, reportGhostJob, reportLostJob, retireGhosts, sweep, sweepDue } from "./recover.ts";
import type { StatePatch } from "./state.ts";
import { VmLimitError } from "../vm/tart.ts";
import { transportCommand } from "../vm/guest.ts";
import type { StartPath } from "../host/metrics/index.ts";

export interface CycleResult {
  outcome: RunOutcome;
  path: StartPath;
  vm: string;
  /** The last runner (another name if a retired runner was replaced). */
  runner: string;
  runners: number;
}

/** Ended by a stop before or instead of a job: exit 0. */
class StoppedError extends MacosRunnerError {
  constructor(when: string) {
    super(`stopped ${when}`, { kind: "ok" });
  }
}

/** Refuses to go on when the state could not be persisted: a crash would forget what we made. */
function persist(r: SlotRun, patch: StatePatch, before: string): void {
  if (r.store.write(patch)) return;
  throw new StateIoError(`cannot record the slot's state in ${r.store.path} (${r.store.lastWriteError?.message}); not ${before}. Free disk space on that volume.`, r.store.lastWriteError);
}

/** The metrics' info series: the pinned digest, else the one tart cached for the tag. */
function reportImage(r: SlotRun, choice: ImageChoice, path: StartPath): void {
  const { lock } = inspectImageLock(r.config.host.stateDir);
  const pinnedHere = lock && lock.digest === choice.digest;
  const digest = choice.digest ?? cachedDigest(choice.ref, r.tart.home);
  r.metrics.info({ image_digest: digest, path, ...(pinnedHere && { runner_version: lock.runner_version, pinned_at: lock.pinned_at }) });
}

export async function serveOneJob(r: SlotRun): Promise<CycleResult> {
  const { config, store, stop, metrics } = r;
  const choice = imageToClone(config, r.log);
  if (!choice.pinned && choice.ref.includes("/")) r.log.info("clone.unpinned", `no image pinned yet (pull has not run): cloning the tag ${choice.ref}`);
  const vm = await cycleVm(r, choice);
  const name = vm.name;
  const log = r.log.child({ vm: name, runner: name });
  const cycle = { ...r, log };
  persist(r, {
    phase: vm.next ? "boot" : "clone", vm: name, vm_runners: undefined, runner_name: undefined, runner_id: undefined, runner_gone: undefined, job: undefined, job_result: undefined,
    cycle_started_at: new Date(r.clock.now()).toISOString(), path: vm.path, image: choice.digest ?? choice.ref, next_vm: undefined,
  }, "starting a VM");
  log.info("cycle.start", vm.next ? "cycle started on the next VM, made ahead" : "cycle started", { phase: store.current.phase, path: vm.path, image: choice.digest ?? choice.ref });

  const cancel = new AbortController();
  const stopOrCancel = AbortSignal.any([stop.drain, cancel.signal]);
  let alive!: () => void;
  const vmAlive = new Promise<void>((res) => (alive = res));
  const vmP = vm.start({ log, signal: stopOrCancel, onAlive: alive });
  // The JIT runner is made once the VM is alive: a VM that cannot start costs no runner.
  const vmFailed = vmP.then(() => false, () => true);
  // Finished VMs are deleted while this one boots, when the host is idle, not while the guest answers.
  const disposed = Promise.race([vmAlive, vmFailed]).then(() => disposeOld(cycle));
  const tokenP = Promise.race([vmAlive.then(() => false), vmFailed]).then(async (failed): Promise<JitConfig> => {
    if (failed) throw new MacosRunnerError("no runner made: the VM did not start");
    if (stopOrCancel.aborted) throw new StoppedError("before the runner was created");
    return makeRunner(cycle, name);
  });
  // Whichever side fails first explains the cycle; the other was cancelled or never began.
  let failedFirst: "vm" | "token" | undefined;
  tokenP.catch(() => {
    failedFirst ??= "token";
    cancel.abort();
  });
  vmP.catch(() => (failedFirst ??= "vm"));
  const [jitR, vmR] = await Promise.allSettled([tokenP, vmP]);
  const background: Promise<unknown>[] = [disposed];
  if (stop.drain.aborted) {
    await Promise.allSettled(background);
    throw new StoppedError("before the runner started");
  }
  if (jitR.status === "rejected" && failedFirst === "token") throw jitR.reason;
  if (vmR.status === "rejected") {
    if (vmR.reason instanceof VmLimitError) {
      keepAsNextVm(r, name, choice.ref);
      // One of the running VMs is this slot's although no state names it: a leftover.
      if (vmR.reason.others.some((o) => r.names.owns(o))) await sweep(cycle, { github: true });
    }
    throw vmR.reason;
  }
  if (jitR.status === "rejected") throw jitR.reason;
  const booted = vmR.value;
  reportImage(r, choice, booted.path);

  let vmStopped = false;
  void booted.vm.exited.then(() => (vmStopped = true));
  let jit = jitR.value;
  let runLog = log;
  let run!: RunHandle;
  // Between two runners of the VM nothing listens: a drain then is the replacement's to see (it makes no runner to take off).
  let replacing = false;
  void aborted(stop.drain).then(() => (replacing ? undefined : drain(cycle, run)));
  void aborted(stop.now).then(() => run.stop());
  store.write({ phase: "run", vm_runners: 1 });
  let outcome: RunOutcome;
  // A runner GitHub retires before any job leaves a VM that never ran a job's code: a new runner starts in it (docs/idle.md).
  for (;;) {
    run = startRun({
      config, vm: name, ip: booted.ip, tart: r.tart, jitConfig: jit.encodedJitConfig, log: runLog, clock: r.clock, vmGone: booted.vm.exited, endAtCompletion: true,
      on: {
        listening: () => {
          metrics.runnerListening();
          // Once per VM.
          if (store.current.vm_runners === 1) background.push(cloneNextVm(r, vm.source), housekeeping(cycle));
        },
        jobStarted: (job) => {
          store.write({ phase: "job", job });
          metrics.jobStarted();
        },
        jobCompleted: (result) => metrics.jobCompleted(result),
      },
    });
    outcome = await run.done;
    if (!(outcome.retired && outcome.job === undefined) || vmStopped) break;
    const keep = keepIdleVm(cycle, choice.ref);
    if (keep !== true) {
      runLog.info("runner.retired", `GitHub retired the idle runner; ${keep}: this VM is replaced by a new one`, { phase: "run", vm_runners: store.current.vm_runners });
      break;
    }
    replacing = true;
    const replaced = await replaceRunner(cycle, name, jit.runner.name).catch(async (err: unknown) => {
      await Promise.allSettled(background);
      throw err;
    });
    replacing = false;
    if (!replaced) {
      // Stopped while the new runner was made: cleanup deletes it.
      outcome = { kind: "stopped", runnerGone: false, detail: "stopped while a retired runner was replaced" };
      break;
    }
    jit = replaced;
    runLog = r.log.child({ vm: name, runner: jit.runner.name });
  }
  // The session lost with the VM up: the job goes on in the guest; wait for it (a false answer has reported it lost).
  const adopted = outcome.kind === "lost" && outcome.sessionDropped && !vmStopped ? await adoptAfterSessionLoss(cycle, name, outcome.job) : undefined;
  if (adopted) {
    outcome = { kind: "succeeded", job: outcome.job, result: "Unknown", runnerGone: true, detail: `the ${transportCommand(config.vm.transport)} session dropped; the job finished on its VM` };
    metrics.jobCompleted("Unknown");
  }
  // A result already recorded ("Lost", by adopt) stays.
  store.write({ job: outcome.job, job_result: outcome.result ?? store.current.job_result, runner_gone: outcome.runnerGone || store.current.runner_gone });
  if (outcome.kind === "lost" && adopted === undefined) {
    reportLostJob(cycle, { phase: "job", vm: name, runner: jit.runner.name, runnerId: jit.runner.id, job: outcome.job }, `job "${outcome.job}" was lost (${outcome.detail}); GitHub fails it: re-run it`);
  }
  await Promise.allSettled(background);

  // Forced off now, deleted by the next cycle (or, when stopping, before this one exits).
  store.write({ phase: "cleanup" });
  const cleanupStarted = r.clock.now();
  const s = store.current;
  const { ghost } = await cleanSlot(cycle, r.gh, { vm: name, runnerId: s.runner_id, runnerName: s.runner_name, runnerGone: s.runner_gone }, { why: outcome.kind, keepStoppedVm: true });
  // Busy on GitHub although we saw no job: one was assigned as the runner or its VM died; it dies with the VM.
  if (ghost && outcome.kind !== "lost") reportGhostJob(cycle, ghost, name);
  store.write({
    vm: undefined, vm_runners: undefined, runner_id: undefined, runner_name: undefined, runner_gone: undefined,
    dispose: [...store.current.dispose, name],
    ghosts: ghost ? [...store.current.ghosts, ghost] : store.current.ghosts,
  });
  metrics.observe("cleanup", (r.clock.now() - cleanupStarted) / 1000);
  return { outcome, path: booted.path, vm: name, runner: jit.runner.name, runners: s.vm_runners ?? 1 };
}

/** Whether the VM of a runner GitHub retired idle may serve a new runner: true, or why not. */
function keepIdleVm(r: SlotRun, image: string): true | string {
  const { config, store } = r;
  if (!config.vm.reuseIdle) return "vm.reuse_idle is off";
  if (r.stop.drain.aborted) return "the slot is stopping";
  const up = r.clock.now() - Date.parse(store.current.cycle_started_at ?? "");
  if (!(up < config.vm.idleReuseMaxMs)) return `the VM is up ${Math.round(up / 1000)} s, vm.idle_reuse_max is ${config.vm.idleReuseMaxMs / 1000} s`;
  const now = imageToClone(config, r.log).ref;
  if (now !== image) return `another image is pinned (${now})`;
  return true;
}

/** Undefined when a stop came meanwhile (the new runner is recorded for cleanup). */
async function replaceRunner(r: SlotRun, vm: string, retired: string): Promise<JitConfig | undefined> {
  const { store, metrics } = r;
  const started = r.clock.now();
  persist(r, { phase: "token", runner_id: undefined, runner_name: undefined, runner_gone: undefined }, "replacing the retired runner");
  const jit = await makeRunner(r, r.names.next());
  const runners = (store.current.vm_runners ?? 1) + 1;
  store.write({ phase: "run", vm_runners: runners });
  if (r.stop.drain.aborted) return undefined;
  metrics.runnerReplaced();
  r.log.info("runner.replaced", `GitHub retired idle runner ${retired} before any job; runner ${jit.runner.name} starts in the same VM (runner ${runners} on it)`, {
    phase: "run", vm, runner: jit.runner.name, runner_id: jit.runner.id, retired, vm_runners: runners, duration_ms: r.clock.now() - started,
  });
  return jit;
}

/** GitHub refusing the call outright (4xx) made no runner, so none is left to look up and delete. */
async function makeRunner(r: SlotRun, name: string): Promise<JitConfig> {
  const started = r.clock.now();
  const jit = await token({ config: r.config, names: r.names, name, log: r.log, gh: r.gh(), beforeCreate: (n) => persist(r, { runner_name: n }, "creating a runner") }).catch((err: unknown) => {
    if (err instanceof GitHubError && err.status >= 400 && err.status < 500) r.store.write({ runner_name: undefined });
    throw err;
  });
  r.store.write({ runner_id: jit.runner.id, runner_name: jit.runner.name });
  r.metrics.observe("token", (r.clock.now() - started) / 1000);
  return jit;
}

/** As for a crashed predecessor's job: wait for GitHub to see it finish rather than kill it. */
async function adoptAfterSessionLoss(r: SlotRun, vm: string, job: string | undefined): Promise<boolean> {
  const s = r.store.current;
  if (s.runner_id === undefined || s.runner_name === undefined) return false;
  r.log.warn("run.session_lost", `the ${transportCommand(r.config.vm.transport)} session to ${vm} dropped while job "${job}" ran; the VM is up, so the job is left to finish`, {
    phase: "job", transport: r.config.vm.transport,
  });
  return adopt(r, { id: s.runner_id, name: s.runner_name, since: new Date(r.clock.now()).toISOString() }, vm);
}

/** A running job finishes; an idle runner is taken off GitHub first (422: a job was just assigned, it runs). */
async function drain(r: SlotRun, run: RunHandle): Promise<void> {
  if (run.job !== undefined) return r.log.warn("run.draining", `stop requested; letting job "${run.job}" finish (signal again to cut it short)`, { phase: "job" });
  const s = r.store.current;
  const removed = await removeRunner(r, r.gh(), { id: s.runner_id, name: s.runner_name }).catch((err: Error) => err);
  if (removed instanceof Error) {
    r.log.warn("run.draining", `could not take the idle runner off GitHub (${removed.message}); stopping it anyway`, { phase: "run" });
  } else if (typeof removed === "object") {
    return r.log.warn("run.draining", "stop requested just as GitHub assigned a job; letting it run (signal again to cut it short)", { phase: "run" });
  } else {
    r.store.write({ runner_gone: true });
  }
  r.log.info("run.stopping", "idle runner removed from GitHub; stopping", { phase: "run" });
  run.stop();
}

/** While a runner listens: ghosts, VMs no state names, and now and then the slot's runners on GitHub. */
async function housekeeping(r: SlotRun): Promise<void> {
  try {
    await retireGhosts(r);
    const { strays } = await sweep(r, { github: sweepDue(r) });
    // A stray VM shows the state forgot something: its slot's runners may be unrecorded too.
    if (strays > 0) await sweep(r, { github: true });
  } catch (err) {
    r.log.warn("housekeeping.failed", `housekeeping failed (${(err as Error).message}); the next cycle tries again`);
  }
}
