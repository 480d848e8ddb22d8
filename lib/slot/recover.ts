// At every launch: what a killed, crashed or rebooted predecessor left is
// removed, runner first, then VM. A job still running on its VM is waited for;
// a runner GitHub still calls busy after its VM died becomes a ghost, deleted
// by later cycles. Names that are not this slot's are never touched.
import type { SlotRun } from "./context.ts";
import { getRunner, listRunners } from "../github/runners.ts";
import { cleanSlot, removeRunner } from "./clean.ts";
import { CONFLICT_FIX, CONFLICT_MEMORY_MS, conflictMessage, provenOurs, secondOwners } from "./ownership.ts";
import type { Ghost } from "./state.ts";

/** An adopted job's runner is looked up on GitHub after 1 s, then less often (a few calls a minute). */
const ADOPT_FIRST_POLL_MS = 1_000;
const ADOPT_MAX_POLL_MS = 15_000;
const SWEEP_EVERY_MS = 60 * 60_000;

const vmRunning = async (r: SlotRun, vm: string) => (await r.tart.list()).some((v) => v.Name === vm && v.Running);

/** Forgets (never deletes) names in the state file that are not this slot's. */
function forgetForeignNames(r: SlotRun): void {
  const s = r.store.current;
  for (const [key, value] of [["vm", s.vm], ["runner_name", s.runner_name], ["next_vm", s.next_vm?.name]] as const) {
    if (value === undefined || r.names.owns(value)) continue;
    r.log.error("state.foreign_name", `the state file names ${key}=${value}, which is not this slot's (${r.names.prefix}…); forgetting it, not touching it`, { phase: "recover" });
    r.store.write(key === "next_vm" ? { next_vm: undefined } : key === "vm" ? { vm: undefined } : { runner_name: undefined, runner_id: undefined });
  }
  const dispose = s.dispose.filter((v) => r.names.owns(v));
  const ghosts = s.ghosts.filter((g) => r.names.owns(g.name));
  if (dispose.length !== s.dispose.length || ghosts.length !== s.ghosts.length) {
    r.log.error("state.foreign_name", "the state file lists VMs or runners that are not this slot's; forgetting them", { phase: "recover" });
    r.store.write({ dispose, ghosts });
  }
}

/** The predecessor left a cycle unfinished. */
export function leftBehind(r: SlotRun): boolean {
  const s = r.store.current;
  return s.vm !== undefined || s.runner_name !== undefined || s.runner_id !== undefined;
}

export async function recover(r: SlotRun, o: { sweep: boolean }): Promise<void> {
  forgetForeignNames(r);
  const s = r.store.current;
  if (leftBehind(r)) {
    const log = r.log.child({ phase: "recover", vm: s.vm, runner: s.runner_name });
    log.warn("recover.start", `the previous cycle ended in phase ${s.phase}; cleaning up what it left`);
    r.store.write({ phase: "recover" });
    let ghost: Ghost | undefined;
    if (!s.runner_gone && (s.runner_id !== undefined || s.runner_name)) {
      const removed = await removeRunner(r, r.gh(), { id: s.runner_id, name: s.runner_name });
      if (typeof removed === "object") {
        if (s.vm === undefined || !(await adopt(r, removed.busy, s.vm))) ghost = removed.busy;
      } else {
        log.info("recover.runner_removed", removed === "deleted" ? "the previous cycle's runner deleted from GitHub before its VM is stopped" : "the previous cycle's runner was already gone");
        await reportJobDiedUnseen(r, s);
      }
    }
    await cleanSlot(r, r.gh, { vm: s.vm, runnerGone: true }, { why: "left by the previous cycle" });
    r.store.write({ vm: undefined, runner_id: undefined, runner_name: undefined, runner_gone: undefined, ghosts: ghost ? [...r.store.current.ghosts, ghost] : r.store.current.ghosts });
    if (ghost) log.warn("recover.ghost", `runner ${ghost.id} is still busy on GitHub but its VM is gone; the slot goes on serving and deletes it later`, { runner_id: ghost.id });
  }
  if (o.sweep) await sweep(r, { github: true });
}

// A job lost with its VM or runner: one `job.lost` line naming what to re-run,
// and for the current VM job_result "Lost", so a launch killed after the report
// and before its cleanup is not followed by a second report.
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

/** The job's VM went down with the loop and GitHub has already failed it (its runner no longer reads busy): lost all the same. */
async function reportJobDiedUnseen(r: SlotRun, s: { vm?: string | undefined; job?: string | undefined; job_result?: string | undefined; runner_name?: string | undefined }): Promise<void> {
  if (s.job === undefined || s.job_result !== undefined || s.vm === undefined) return;
  if (await vmRunning(r, s.vm)) return;
  reportLostJob(r, { phase: "recover", vm: s.vm, runner: s.runner_name, job: s.job }, `job "${s.job}" on runner ${s.runner_name} was lost: its VM ${s.vm} went down with the slot's loop (power loss, reboot), and GitHub has failed it: re-run it`);
}

/** Waits, within the job's deadline, for the job of a busy runner whose VM still runs: true. False: reported lost (a ghost). */
export async function adopt(r: SlotRun, runner: Ghost, vm: string): Promise<boolean> {
  const current = vm === r.store.current.vm;
  if (!(await vmRunning(r, vm))) {
    const job = current ? r.store.current.job : undefined;
    if (current && r.store.current.job_result === LOST) return false; // reported before the restart
    reportLostJob(r, { phase: "recover", vm, runner: runner.name, runnerId: runner.id, job }, `${job ? `job "${job}"` : "the job"} on runner ${runner.name} was lost: its VM ${vm} is gone (crash, kill or reboot); GitHub fails it: re-run it`);
    return false;
  }
  const started = Date.parse(r.store.current.cycle_started_at ?? "") || r.clock.now();
  const deadline = started + r.config.runner.jobTimeoutMs;
  const log = r.log.child({ phase: "job", vm, runner: runner.name });
  log.warn("recover.adopt", `runner ${runner.id} is running a job on ${vm}, which is still up; waiting for the job instead of killing it`, { runner_id: runner.id });
  r.store.write({ phase: "job" });
  let finished: "done" | "vm-gone" | undefined;
  for (let wait = ADOPT_FIRST_POLL_MS; !finished && r.clock.now() < deadline && !r.stop.now.aborted; wait = Math.min(ADOPT_MAX_POLL_MS, wait * 2)) {
    await r.clock.sleep(Math.min(wait, deadline - r.clock.now()), r.stop.now);
    const now = await getRunner(r.gh(), runner.id);
    if (!now || !now.busy) finished = "done";
    else if (!(await vmRunning(r, vm))) finished = "vm-gone";
  }
  if (finished === "done") {
    log.info("recover.adopted_done", "the adopted job finished");
    const again = await removeRunner(r, r.gh(), { id: runner.id });
    return typeof again !== "object";
  }
  reportLostJob(r, { phase: "job", vm, runner: runner.name, runnerId: runner.id }, finished === "vm-gone" ? `the VM of the adopted job stopped; the job on runner ${runner.name} is lost: re-run it` : `the adopted job on runner ${runner.name} did not finish in time; cutting it: re-run it`);
  return false;
}

/** Removes what this slot owns but its state does not name (runners only as lib/slot/ownership.ts allows), runner first. */
export async function sweep(r: SlotRun, o: { github: boolean }): Promise<{ strays: number }> {
  const s = r.store.current;
  const known = new Set([s.vm, s.next_vm?.name, ...s.dispose].filter((v): v is string => v !== undefined));
  const ghosts = [...s.ghosts];
  const ghostIds = new Set(ghosts.map((g) => g.id));
  const dropRunner = async (runner: { id?: number; name: string }) => {
    const removed = await removeRunner(r, r.gh(), runner);
    if (typeof removed !== "object") return;
    if (!(await adopt(r, removed.busy, runner.name))) ghosts.push(removed.busy);
  };
  let conflictSeenAt = s.conflict_seen_at;
  if (o.github) {
    const unrecorded = (await listRunners(r.gh(), { namePrefix: r.names.prefix })).filter(
      (runner) => r.names.owns(runner.name) && runner.name !== s.runner_name && !ghostIds.has(runner.id));
    const evidence = { named: new Set(ghosts.map((g) => g.name)), vms: new Set((await r.tart.list()).map((v) => v.Name)) };
    const others = unrecorded.filter((runner) => secondOwners(runner, evidence));
    if (others.length > 0) {
      conflictSeenAt = new Date(r.clock.now()).toISOString();
      r.log.error("host.id_conflict", `${conflictMessage(others, r.names.prefix)}; not removing ${others.length === 1 ? "it" : "them"}: ${CONFLICT_FIX}`, { phase: "recover", runner: others[0]!.name });
    }
    const wary = r.clock.now() - (Date.parse(conflictSeenAt ?? "") || 0) < CONFLICT_MEMORY_MS;
    for (const runner of unrecorded) {
      if (others.includes(runner)) continue;
      if (!provenOurs(runner, evidence) && wary) {
        r.log.warn("sweep.runner_unproven", `runner ${runner.name} is named like this slot's but neither state nor tart knows it, and another host uses this host id: leaving it`, { phase: "recover", runner: runner.name });
        continue;
      }
      r.log.warn("sweep.runner", `runner ${runner.name} is this slot's but no state names it; removing it`, { phase: "recover", runner: runner.name });
      await dropRunner(runner);
    }
  }
  let strays = 0;
  for (const v of await r.tart.list()) {
    if (!r.names.owns(v.Name) || known.has(v.Name)) continue;
    strays++;
    r.log.warn("sweep.vm", `VM ${v.Name} is this slot's but no state names it; removing it and its runner`, { phase: "recover", vm: v.Name });
    if (!o.github) await dropRunner({ name: v.Name });
    await cleanSlot(r, r.gh, { vm: v.Name }, { why: "unrecorded VM" });
  }
  r.store.write({ ghosts, conflict_seen_at: conflictSeenAt, ...(o.github && { swept_at: new Date(r.clock.now()).toISOString(), sweep_pending: undefined }) });
  return { strays };
}

export function sweepDue(r: SlotRun): boolean {
  const at = Date.parse(r.store.current.swept_at ?? "");
  return !Number.isFinite(at) || r.clock.now() - at > SWEEP_EVERY_MS;
}

/** At most once per host.backoff_max, paced like a failing slot. */
export async function retireGhosts(r: SlotRun): Promise<void> {
  const s = r.store.current;
  const checked = Date.parse(s.ghosts_checked_at ?? "");
  if (s.ghosts.length === 0 || (Number.isFinite(checked) && r.clock.now() - checked < r.config.host.backoffMaxMs)) return;
  const left: Ghost[] = [];
  for (const g of s.ghosts) {
    const removed = await removeRunner(r, r.gh(), { id: g.id, name: g.name });
    if (typeof removed === "object") left.push(g);
    else r.log.info("ghost.removed", `ghost runner ${g.name} removed from GitHub`, { runner_id: g.id });
  }
  r.store.write({ ghosts: left, ghosts_checked_at: new Date(r.clock.now()).toISOString() });
}
