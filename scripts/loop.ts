#!/usr/bin/env bun
// loop: one cycle of a VM slot, run by launchd again after every exit:
//   lock -> recover -> (token || clone+boot) -> ssh-run -> cleanup -> exit 0
//   loop --slot 1 --config ~/.config/macos-runner/config.yml
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { exitCode, MacosRunnerError } from "../lib/errors.ts";
import type { JitConfig } from "../lib/github/runners.ts";
import type { Logger } from "../lib/log.ts";
import { newName } from "../lib/names.ts";
import { backoffMs, SlotLock, SlotStore } from "../lib/slot.ts";
import type { Tart } from "../lib/tart.ts";
import { boot } from "./boot.ts";
import { cleanup, targetFromState } from "./cleanup.ts";
import { clone } from "./clone.ts";
import { sshRun, type RunOutcome, type StopControl } from "./ssh-run.ts";
import { token } from "./token.ts";

export const spec = {
  name: "loop",
  summary: "serve one job on a slot: recover, token || clone+boot, ssh-run, cleanup; exits so launchd starts the next cycle",
  options: {},
  exits: {
    failure: "the cycle failed (VM, SSH or job timeout); cleaned up, backed off, launchd restarts it",
    config: "config invalid, or GitHub refused the credentials/permissions",
    tempfail: "slot already served by another loop, or GitHub unavailable/rate limited (backed off)",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** Outcomes after which the slot is healthy: a job ran, or GitHub retired an idle runner. */
function healthy(o: RunOutcome): boolean {
  return o.kind === "succeeded" || o.kind === "job-failed" || o.kind === "stopped" || (o.kind === "no-job" && o.retired === true);
}

/** What a clean slot's state file no longer names. */
const NOTHING_LEFT = { vm: undefined, runner_id: undefined, runner_name: undefined, runner_gone: undefined } as const;

class Stop implements StopControl {
  requested: "drain" | "now" | undefined;
  private readonly listeners: ((how: "drain" | "now") => void)[] = [];
  readonly abort = new AbortController();
  onStop(cb: (how: "drain" | "now") => void): void {
    this.listeners.push(cb);
    if (this.requested) cb(this.requested);
  }
  request(): void {
    this.requested = this.requested ? "now" : "drain";
    this.abort.abort();
    for (const cb of this.listeners) cb(this.requested);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

export async function loop(o: { config: Config; slot: number; log: Logger; tart: Tart; stop?: Stop }): Promise<number> {
  const { config, slot, tart } = o;
  const stop = o.stop ?? new Stop();
  const store = new SlotStore(config.host.stateDir, slot);
  const lock = SlotLock.acquire(config.host.stateDir, slot);
  let log = o.log;
  try {
    // 0. Whatever a killed or rebooted predecessor left behind goes first.
    const prev = store.current;
    if ((prev.phase !== "done" && prev.phase !== "failed") || prev.vm || prev.runner_id !== undefined) {
      log.warn("recover.start", `previous cycle ended in phase ${prev.phase}; cleaning up what it left`, { phase: "recover", vm: prev.vm, runner: prev.runner_name });
      store.write({ phase: "cleanup" });
      await cleanup({ config, slot, tart, log, target: targetFromState(prev), sweep: true });
      store.write({ phase: "done", ...NOTHING_LEFT });
    }
    const waitMs = prev.backoff_until ? Date.parse(prev.backoff_until) - Date.now() : 0;
    if (waitMs > 0) {
      log.info("backoff.wait", `backing off ${waitMs} ms after ${prev.failures} failed cycle(s)`, { phase: "backoff", wait_ms: waitMs });
      await sleep(waitMs, stop.abort.signal);
    }
    if (stop.requested) return exitCode("ok");

    const name = newName(config.runner.namePrefix, slot);
    log = log.child({ vm: name, runner: name });
    const cycleStarted = Date.now();
    const tartBefore = tart.elapsedMs;
    store.write({ phase: "clone", vm: name, runner_name: name, runner_id: undefined, runner_gone: undefined, job: undefined, job_result: undefined, cycle_started_at: new Date().toISOString() });
    log.info("cycle.start", "cycle started", { phase: "clone" });

    try {
      // 1-3. The JIT config is fetched while the VM clones and boots; either
      // failing (or a stop) ends the other's wait.
      const cycleAbort = new AbortController();
      stop.abort.signal.addEventListener("abort", () => cycleAbort.abort(), { once: true });
      const tokenP: Promise<JitConfig> = token({ config, slot, name, log }).then((jit) => {
        store.write({ runner_id: jit.runner.id, runner_name: jit.runner.name });
        return jit;
      });
      const vmP = (async () => {
        await clone({ config, tart, vm: name, log, onImage: (image) => store.write({ image: image.digest }) });
        store.write({ phase: "boot" });
        return boot({ config, tart, vm: name, slot, log, signal: cycleAbort.signal });
      })();
      tokenP.catch(() => cycleAbort.abort());
      const [jitR, vmR] = await Promise.allSettled([tokenP, vmP]);
      if (stop.requested) throw new MacosRunnerError("stopped before the runner started", { kind: "ok" });
      if (jitR.status === "rejected") throw jitR.reason;
      if (vmR.status === "rejected") throw vmR.reason;
      const readyMs = Date.now() - cycleStarted;

      // 4. One job.
      store.write({ phase: "run" });
      const outcome = await sshRun({ config, ip: vmR.value.ip, jitConfig: jitR.value.encodedJitConfig, log, stop });
      store.write({ job: outcome.job, job_result: outcome.result, runner_gone: outcome.runnerGone || undefined });

      // 5. Cleanup; a completed job already took its runner off GitHub.
      store.write({ phase: "cleanup" });
      const target = targetFromState(store.current);
      await cleanup({ config, slot, tart, log, target });
      const ok = healthy(outcome);
      const cycleMs = Date.now() - cycleStarted;
      if (ok) {
        store.write({ phase: "done", ...NOTHING_LEFT, failures: 0, backoff_until: undefined, last_error: undefined });
        log.info("cycle.done", `${outcome.kind}${outcome.job ? ` (job "${outcome.job}": ${outcome.result})` : ""}`, {
          phase: "done", duration_ms: cycleMs, ready_ms: readyMs, tart_ms: Math.round(tart.elapsedMs - tartBefore), outcome: outcome.kind,
        });
        return exitCode("ok");
      }
      throw new MacosRunnerError(`run ended: ${outcome.kind}${outcome.detail ? ` (${outcome.detail})` : ""}`);
    } catch (err) {
      if (err instanceof MacosRunnerError && err.kind === "ok") {
        store.write({ phase: "cleanup" });
        await cleanup({ config, slot, tart, log, target: targetFromState(store.current) });
        store.write({ phase: "done", ...NOTHING_LEFT });
        log.info("cycle.stopped", "stopped by signal; slot clean");
        return exitCode("ok");
      }
      return await fail(err, { config, slot, tart, log, store, stop });
    }
  } finally {
    lock.release();
  }
}

/** Records the failure, cleans up, and backs off (persisted, capped) before exiting non-zero. */
async function fail(err: unknown, o: { config: Config; slot: number; tart: Tart; log: Logger; store: SlotStore; stop: Stop }): Promise<number> {
  const message = err instanceof Error ? err.message : String(err);
  o.log.error("cycle.failed", message, { phase: o.store.current.phase, error: err });
  o.store.write({ phase: "cleanup", last_error: message });
  try {
    await cleanup({ config: o.config, slot: o.slot, tart: o.tart, log: o.log, target: targetFromState(o.store.current) });
    o.store.write(NOTHING_LEFT);
  } catch (cleanupErr) {
    o.log.error("cleanup.failed", `cleanup failed; the next start of the slot retries it: ${(cleanupErr as Error).message}`, { phase: "cleanup", error: cleanupErr });
  }
  const failures = o.store.current.failures + 1;
  const retryAt = (err as { retryAtMs?: number }).retryAtMs;
  const delay = Math.max(backoffMs(failures, o.config.host.backoffInitialMs, o.config.host.backoffMaxMs), retryAt ? retryAt - Date.now() : 0);
  o.store.write({ phase: o.store.current.vm ? "cleanup" : "failed", failures, backoff_until: new Date(Date.now() + delay).toISOString() });
  o.log.warn("backoff.start", `failure ${failures} in a row; backing off ${delay} ms before exiting`, { phase: "backoff", wait_ms: delay });
  await sleep(delay, o.stop.abort.signal);
  return err instanceof MacosRunnerError && err.kind !== "ok" ? err.exitCode : exitCode("failure");
}

export async function main({ common }: Parsed<typeof spec.options>): Promise<number | void> {
  const ctx = openSlot(common, spec.name);
  const stop = new Stop();
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      ctx.log.warn("signal", `${sig}: ${stop.requested ? "cutting the job short" : "finishing the current job, then cleaning up"}`);
      stop.request();
    });
  }
  return loop({ ...ctx, stop });
}

if (import.meta.main) await runCli(spec, main);
