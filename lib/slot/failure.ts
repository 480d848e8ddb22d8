// A failed cycle: one line, cleaned once, counted, and backed off (persisted,
// doubling, capped) so no failure becomes a restart storm or a storm of GitHub calls.
import { exitCode, MacosRunnerError, type ExitKind } from "../core/errors.ts";
import { disposeAll } from "./next-vm.ts";
import { failureReason } from "../host/metrics/definitions.ts";
import { HostDegradedError } from "../vm/tart.ts";
import { cleanSlot } from "./clean.ts";
import { reportGhostJob } from "./lost.ts";
import type { SlotRun } from "./context.ts";

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
