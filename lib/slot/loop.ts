// One cycle per process: lock -> recover -> back off if failing -> serve one job
// -> boot the next VM -> exit code; launchd starts it again.
import { readdirSync, readFileSync } from "node:fs";
import { exitCode, MacosRunnerError, StateIoError, type ExitKind } from "../core/errors.ts";
import type { Stop } from "../core/signals.ts";
import { systemClock, type Clock } from "../core/wait.ts";
import { githubFor, type GitHubClient } from "../github/client.ts";
import { failureReason } from "../host/metrics/definitions.ts";
import { SlotMetrics } from "../host/metrics/index.ts";
import { OUTCOME_EXIT } from "../runner/run.ts";
import { HostDegradedError } from "../vm/tart.ts";
import type { SlotContext, SlotRun } from "./context.ts";
import { serveOneJob, type CycleResult } from "./cycle.ts";
import { cleanSlot } from "./clean.ts";
import { lockSlot } from "./lock.ts";
import { disposeAll, startNextVm } from "./next-vm.ts";
import { leftBehind, recover, reportGhostJob } from "./recover.ts";
import { SlotStore, type SlotState } from "./state.ts";

/** One client per cycle, made when first needed (reading the key is where a bad key shows). */
function lazyGitHub(ctx: SlotContext): () => GitHubClient {
  let client: GitHubClient | undefined;
  return () => (client ??= githubFor(ctx.config, ctx.log, ctx.clock));
}

export async function loop(ctx: SlotContext, stop: Stop): Promise<number> {
  const lock = lockSlot(ctx.config.host.stateDir, ctx.slot);
  const store = new SlotStore(ctx.config.host.stateDir, ctx.slot, ctx.clock);
  const metrics = SlotMetrics.open({ config: ctx.config, slot: ctx.slot, log: ctx.log });
  mirrorStateToMetrics(store, metrics);
  const r: SlotRun = { ...ctx, store, gh: lazyGitHub(ctx), stop, metrics };
  try {
    if (store.removeStrayTempFiles() > 0) ctx.log.warn("state.temp_removed", "removed temp files a killed writer left in the state dir");
    if (store.problems.length > 0) ctx.log.warn("state.invalid", `state file ${store.path} was unusable (${store.problems.join("; ")}); replaced, and the slot's VMs and runners are swept`);
    const crashed = leftBehind(r);
    // Recorded first: a sweep that fails or is killed is made by the next launch too.
    if (store.problems.length > 0 || !store.existed) store.write({ sweep_pending: true });
    const recovered = await recover(r, { sweep: store.current.sweep_pending === true }).then(() => true, (err: unknown) => err);
    if (recovered !== true) return await failCycle(r, recovered, { clean: false });
    // A crashed predecessor counts as a failed cycle: a loop that keeps dying backs off too.
    if (crashed) recordFailure(r, new Error("the previous cycle did not finish (crash, kill or reboot); its leftovers were removed"));
    await waitOutBackoff(r);
    if (!stop.drain.aborted) {
      done(r, await serveOneJob(r));
      await startNextVm(r);
    }
    return exitCode("ok");
  } catch (err) {
    return await failCycle(r, err);
  } finally {
    if (stop.drain.aborted) await disposeAll(r).catch((err: Error) => ctx.log.error("dispose.failed", `could not delete the slot's stopped VMs: ${err.message}; the next launch deletes them`));
    metrics.flush();
    lock.release();
    ctx.log.info("loop.exit", "exiting", { ...usage(), unreaped: unreapedChildren() });
  }
}

/** A healthy cycle (a job ran, a stop, or GitHub retired the idle runner) resets the backoff. */
function done(r: SlotRun, { outcome, vm, runner, runners }: CycleResult): void {
  const healthy = outcome.kind === "succeeded" || outcome.kind === "job-failed" || outcome.kind === "stopped" || outcome.retired === true;
  if (!r.store.persisted) {
    throw new StateIoError(`the job is done, but the slot's state cannot be recorded in ${r.store.path} (${r.store.lastWriteError?.message}); free disk space on that volume`, r.store.lastWriteError);
  }
  if (!healthy) throw new MacosRunnerError(`run ended: ${outcome.kind}${outcome.detail ? ` (${outcome.detail})` : ""}`, { kind: OUTCOME_EXIT[outcome.kind] });
  const served = outcome.job !== undefined;
  r.store.write({
    phase: "done", failures: 0, backoff_until: undefined, last_error: undefined, last_failure_kind: undefined, host_degraded_at: undefined,
    ...(served && { jobs_served: r.store.current.jobs_served + 1, last_job_at: new Date(r.clock.now()).toISOString() }),
  });
  r.log.info("cycle.done", `${outcome.kind}${outcome.job ? ` (job "${outcome.job}": ${outcome.result})` : ""}`, {
    vm, runner, vm_runners: runners, phase: "done", outcome: outcome.kind, duration_ms: r.clock.now() - Date.parse(r.store.current.cycle_started_at ?? ""),
  });
}

/** Keeps the state-derived metrics in step with every write of the state file. */
function mirrorStateToMetrics(store: SlotStore, metrics: SlotMetrics): void {
  const mirror = (s: Readonly<SlotState>, prev?: Readonly<SlotState>) => {
    if (s.ghosts.length !== prev?.ghosts.length) metrics.ghosts(s.ghosts.length);
    if (s.failures !== prev?.failures || s.backoff_until !== prev?.backoff_until) {
      metrics.backoff(s.backoff_until ? new Date(s.backoff_until) : undefined, s.failures);
    }
    if (s.phase !== prev?.phase) metrics.phase(s.phase);
    if (s.host_degraded_at !== prev?.host_degraded_at || !prev) metrics.hostDegraded(s.host_degraded_at !== undefined);
  };
  mirror(store.current);
  store.onChange = mirror;
}

// A failed cycle: one line, cleaned once, counted, and backed off (persisted,
// doubling, capped) so no failure becomes a restart storm or a storm of GitHub calls.
const kindOf = (err: unknown): ExitKind => (err instanceof MacosRunnerError ? err.kind : "failure");

export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
}

/** At least as long as a rate limit asks; the longest when the state cannot count failures across restarts. */
export function recordFailure(r: Pick<SlotRun, "config" | "store" | "log" | "clock">, err: unknown): number {
  const failures = r.store.current.failures + 1;
  const retryAt = (err as { retryAtMs?: number }).retryAtMs;
  const { backoffInitialMs, backoffMaxMs } = r.config.host;
  // A host that cannot start VMs (leaked places) stays so until a reboot: trying again sooner only churns.
  const degraded = err instanceof HostDegradedError;
  const backoff = r.store.persisted && !degraded ? backoffMs(failures, backoffInitialMs, backoffMaxMs) : backoffMaxMs;
  const now = new Date(r.clock.now());
  const delay = Math.max(backoff, retryAt ? retryAt - now.getTime() : 0);
  r.store.write({
    failures, backoff_until: new Date(now.getTime() + delay).toISOString(),
    last_error: err instanceof Error ? err.message : String(err), last_failure_kind: kindOf(err), last_failure_at: now.toISOString(),
    ...(degraded && { host_degraded_at: now.toISOString() }),
  });
  if (!r.store.persisted) r.log.error("state.unpersisted", `cannot write ${r.store.path} (${r.store.lastWriteError?.message}); cleaned up from what this process knew; backing off the longest (host.backoff_max) until it can: free disk space on that volume`);
  return delay;
}

/** `clean: false` when the failure was that very cleanup (recovery). An unpersisted slot deletes all its VMs now: no later launch would know of them. */
export async function failCycle(r: SlotRun, err: unknown, o: { clean: boolean } = { clean: true }): Promise<number> {
  const kind = kindOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const s = r.store.current;
  const where = { vm: s.vm, runner: s.runner_name, phase: s.phase };
  if (kind === "ok") r.log.info("cycle.stopped", `${message}; cleaning up`, where);
  else {
    r.log.error(err instanceof HostDegradedError ? "host.degraded" : "cycle.failed", message, { ...where, kind, error: err });
    r.metrics.failure(s.phase, failureReason(err));
  }
  r.store.write({ phase: "cleanup" });
  try {
    if (!o.clean) throw err;
    const { ghost } = await cleanSlot(r, r.gh, { vm: s.vm, runnerId: s.runner_id, runnerName: s.runner_name, runnerGone: s.runner_gone }, { why: kind === "ok" ? "stopped" : "failed cycle" });
    r.store.write({ vm: undefined, runner_id: undefined, runner_name: undefined, runner_gone: undefined, ...(ghost && { ghosts: [...r.store.current.ghosts, ghost] }) });
    if (ghost) reportGhostJob(r, ghost, s.vm);
    if (!r.store.persisted) await disposeAll(r);
  } catch (cleanupErr) {
    if (cleanupErr !== err) r.log.error("cleanup.failed", `cleanup failed; the slot's next launch retries it: ${(cleanupErr as Error).message}`, { phase: "cleanup", error: cleanupErr });
  }
  if (kind === "ok") {
    r.store.write({ phase: "done" });
    return exitCode("ok");
  }
  const delay = recordFailure(r, err);
  r.store.write({ phase: "backoff" });
  r.log.warn("backoff.start", `failure ${r.store.current.failures} in a row; backing off ${delay} ms before exiting`, { phase: "backoff", wait_ms: delay });
  await r.clock.sleep(delay, r.stop.drain);
  r.store.write({ phase: "failed" });
  return exitCode(kind);
}

/** What is left of a persisted backoff: a restart must not skip it. */
export async function waitOutBackoff(r: Pick<SlotRun, "store" | "log" | "stop" | "clock">): Promise<void> {
  const until = Date.parse(r.store.current.backoff_until ?? "");
  const waitMs = Number.isFinite(until) ? until - r.clock.now() : 0;
  if (waitMs <= 0) return;
  r.store.write({ phase: "backoff" });
  r.log.info("backoff.wait", `backing off ${waitMs} ms after ${r.store.current.failures} failed cycle(s)`, { phase: "backoff", wait_ms: waitMs });
  await r.clock.sleep(waitMs, r.stop.drain);
}

// What this process has cost so far, logged when it exits.
/** Linux's USER_HZ. */
const CLOCK_TICKS_PER_S = 100;

/** Children waited for (Linux only; 10 ms resolution). */
function childrenCpuMs(): number | undefined {
  try {
    // cutime and cstime: the 16th and 17th fields after "(comm)".
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Children not yet reaped (a VM's `tart run` that was just killed), Linux only. */
function unreapedChildren(): number {
  try {
    return readdirSync("/proc/self/task").reduce((n, tid) => n + readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).length, 0);
  } catch {
    return 0;
  }
}

function usage() {
  const { user, system } = process.cpuUsage();
  const children = childrenCpuMs();
  return {
    cpu_ms: Math.round((user + system) / 1000),
    ...(children !== undefined && { children_cpu_ms: children }),
    max_rss_kb: process.resourceUsage().maxRSS,
  };
}

// An error before a cycle starts has no state to back off with: under launchd it
// pauses before exiting, as KeepAlive restarts at once and a config mistake must
// not become 60 restarts a minute.
export const PRE_CYCLE_PAUSE_MS = 10_000;

/** launchd names its jobs in XPC_SERVICE_NAME ("0" outside launchd). */
function underLaunchd(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.XPC_SERVICE_NAME && env.XPC_SERVICE_NAME !== "0");
}

/** Runs `fn`; what it throws is re-thrown, after the pause under launchd. A stop (`signal`: a bootout) ends the pause. */
export async function pacedExit<T>(fn: () => Promise<T>, o: { clock?: Clock; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (underLaunchd(o.env)) await (o.clock ?? systemClock).sleep(PRE_CYCLE_PAUSE_MS, o.signal);
    throw err;
  }
}
