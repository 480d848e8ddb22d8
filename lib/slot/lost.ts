// A job lost with its VM or runner: one `job.lost` error line naming what an
// operator re-runs (job, runner, VM), the lost-jobs metric, and, for the
// slot's current VM, job_result "Lost" in the state, so a launch killed after
// the report and before its cleanup is not followed by a second report.
import type { SlotRun } from "./context.ts";
import type { Ghost } from "./state.ts";

/** The state's job_result once a lost job has been reported. */
export const LOST = "Lost";

export interface LostJob {
  phase: string;
  vm: string | undefined;
  runner: string | undefined;
  runnerId?: number | undefined;
  /** The job's name, when the runner printed it. */
  job?: string | undefined;
}

export function reportLostJob(r: Pick<SlotRun, "log" | "metrics" | "store">, lost: LostJob, message: string): void {
  r.metrics.lostJob();
  if (lost.vm !== undefined && lost.vm === r.store.current.vm) r.store.write({ job_result: LOST });
  r.log.error("job.lost", message, { phase: lost.phase, vm: lost.vm, runner: lost.runner, runner_id: lost.runnerId, job: lost.job });
}

/**
 * A runner GitHub calls busy at cleanup, when no job of it was seen: GitHub
 * assigned one just as the runner or its VM died, and the job dies with the
 * VM. Reported by runner and VM (its name never reached us).
 */
export function reportGhostJob(r: Pick<SlotRun, "log" | "metrics" | "store">, ghost: Ghost, vm: string | undefined): void {
  reportLostJob(r, { phase: "cleanup", vm, runner: ghost.name, runnerId: ghost.id }, `runner ${ghost.name} was handed a job as it or its VM died; GitHub fails that job: re-run it`);
}
