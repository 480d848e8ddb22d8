#!/usr/bin/env bun
// loop: one cycle of a VM slot; launchd starts it again after every exit.
//   lock -> recover what a predecessor left -> back off if failing -> serve one job
//   -> start the next cycle's VM (cloned while the job ran) -> exit
//   loop --slot 1 --config ~/.config/macos-runner/config.yml
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot, type SlotContext } from "../lib/slot/context.ts";
import { disposeAll, serveOneJob, type CycleResult } from "../lib/slot/cycle.ts";
import { OUTCOME_EXIT } from "../lib/runner/run.ts";
import { exitCode, MacosRunnerError, StateIoError } from "../lib/core/errors.ts";
import { githubFor, type GitHubClient } from "../lib/github/client.ts";
import { pacedExit } from "../lib/core/pace.ts";
import { startNextVm } from "../lib/slot/prestart.ts";
import { stopOnSignals, type Stop } from "../lib/core/signals.ts";
import { failCycle, recordFailure, waitOutBackoff } from "../lib/slot/failure.ts";
import { SlotMetrics } from "../lib/host/metrics/index.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { mirrorStateToMetrics } from "../lib/slot/metrics.ts";
import type { SlotRun } from "../lib/slot/context.ts";
import { leftBehind, recover } from "../lib/slot/recover.ts";
import { SlotStore } from "../lib/slot/state.ts";
import { unreapedChildren, usage } from "../lib/core/usage.ts";

export const spec = {
  name: "loop",
  summary: "serve one job on a slot: recover, (clone+boot || token), ssh-run, cleanup; exits so launchd starts the next cycle",
  options: {},
  exits: {
    failure: "the cycle failed (VM, SSH, runner); cleaned up and backed off; launchd starts it again",
    "bad-input": "GitHub or tart answered something unexpected; cleaned up and backed off",
    "state-io": "host.state_dir cannot be written (full disk?); cleaned up from memory and backed off",
    tempfail: "the slot is in use by another loop, GitHub is unavailable or rate limited, or another VM holds a VM place (backed off)",
    "no-job": "the runner ended without a job (not a retirement by GitHub); backed off",
    lost: "the VM or the runner died while the job ran (the job is reported in the log: re-run it); backed off",
    timeout: "the runner did not listen within runner.listen_timeout, or the job outran runner.job_timeout",
    "host-key": "the guest's host key does not match vm.ssh.known_hosts_path; backed off",
    "local-network": "macOS Local Network privacy refused the connection to the guest (vm.transport: ssh); backed off",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** One client per cycle, made when first needed (reading the key is where a bad key shows). */
function lazyGitHub(ctx: SlotContext): () => GitHubClient {
  let client: GitHubClient | undefined;
  return () => (client ??= githubFor(ctx.config, ctx.log));
}

export async function loop(ctx: SlotContext, stop: Stop): Promise<number> {
  const lock = lockSlot(ctx.config.host.stateDir, ctx.slot);
  const store = new SlotStore(ctx.config.host.stateDir, ctx.slot);
  const metrics = SlotMetrics.open({ config: ctx.config, slot: ctx.slot, log: ctx.log });
  mirrorStateToMetrics(store, metrics);
  const r: SlotRun = { ...ctx, store, gh: lazyGitHub(ctx), stop, metrics };
  try {
    if (store.removeStrayTempFiles() > 0) ctx.log.warn("state.temp_removed", "removed temp files a killed writer left in the state dir");
    if (store.problems.length > 0) ctx.log.warn("state.invalid", `state file ${store.path} was unusable (${store.problems.join("; ")}); replaced, and the slot's VMs and runners are swept`);
    const crashed = leftBehind(r);
    const recovered = await recover(r, { sweep: store.problems.length > 0 || !store.existed }).then(() => true, (err: unknown) => err);
    if (recovered !== true) return await failCycle(r, recovered, { clean: false });
    // A crashed predecessor counts as a failed cycle: a loop that keeps dying backs off too.
    if (crashed) recordFailure(r, new Error("the previous cycle did not finish (crash, kill or reboot); its leftovers were removed"));
    await waitOutBackoff(r);
    if (!stop.drain.aborted) {
      done(r, await serveOneJob(r));
      // The next cycle's VM boots while this process exits and the next one starts.
      await startNextVm(r);
    }
    return exitCode("ok");
  } catch (err) {
    return await failCycle(r, err);
  } finally {
    // A stopping slot leaves nothing on disk: finished and pre-cloned VMs go now.
    if (stop.drain.aborted) await disposeAll(r).catch((err: Error) => ctx.log.error("dispose.failed", `could not delete the slot's stopped VMs: ${err.message}; the next start deletes them`));
    metrics.flush();
    lock.release();
    // What the cycle cost this host, for the benchmarks and capacity planning.
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
    ...(served && { jobs_served: r.store.current.jobs_served + 1, last_job_at: new Date().toISOString() }),
  });
  r.log.info("cycle.done", `${outcome.kind}${outcome.job ? ` (job "${outcome.job}": ${outcome.result})` : ""}`, {
    vm, runner, vm_runners: runners, phase: "done", outcome: outcome.kind, duration_ms: Date.now() - Date.parse(r.store.current.cycle_started_at ?? ""),
  });
}

export async function main({ common }: Parsed<typeof spec.options>): Promise<number> {
  return pacedExit(async () => {
    const ctx = openSlot(common, spec.name);
    return loop(ctx, stopOnSignals(ctx.log));
  });
}

if (import.meta.main) await runCli(spec, main);
