// A job lost with its VM or runner: one `job.lost` line naming what to re-run,
// and for the current VM job_result "Lost", so a launch killed after the report
// and before its cleanup is not followed by a second report.
import type { SlotRun } from "./context.ts";
import type { Ghost } from "./state.ts";

export const LOST = "Lost";

interface LostJob {
  phase: string;
  vm: string | undefined;
  runner: string | undefined;
  runnerId?: number | undefined;
  job?: string | undefined;
}

export function reportLostJob(r: Pick<SlotRun, "log" | "metrics" | "store">, lost: LostJob, message: string): void {
  r.metrics.lostJob();
  if (lost.vm !== undefined && lost.vm === r.store.current.vm) r.store.write({ job_result: LOST });
  r.log.error("job.lost", message, { phase: lost.phase, vm: lost.vm, runner: lost.runner, runner_id: lost.runnerId, job: lost.job });
}

/** Busy at cleanup with no job seen: GitHub assigned one as the runner or its VM died; its name never reached us. */
export function reportGhostJob(r: Pick<SlotRun, "log" | "metrics" | "store">, ghost: Ghost, vm: string | undefined): void {
  reportLostJob(r, { phase: "cleanup", vm, runner: ghost.name, runnerId: ghost.id }, `runner ${ghost.name} was handed a job as it or its VM died; GitHub fails that job: re-run it`);
}
