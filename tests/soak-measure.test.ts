// The soak's "lost to our own actions" row: a job counts as killed by a fault
// only when a fault the soak applied killed the VM its runner ran in. A
// runner is named after its VM, except a runner made in a VM whose first
// runner GitHub retired idle (or one renamed after a 409): its VM is the one
// its `token.done` line names.
import { describe, expect, test } from "bun:test";
import type { JobState } from "../sim/github/client.ts";
import type { LogLine } from "../sim/logs.ts";
import type { Injected } from "../bench/soak/director.ts";
import { measure, type Evidence } from "../bench/soak/measure.ts";

const VM = "acme-mac-mini-2-b53009";
const REPLACED = "acme-mac-mini-2-b5ab14";
const LOST_COMM = `The self-hosted runner: ${REPLACED} lost communication with the server.`;

const failedJob = (name: string, runner: string): JobState => ({
  id: 1, name, labels: [], script: "sleep 1", status: "completed", result: "Failed", runner_name: runner, runner_id: 2,
  failure: LOST_COMM, attempts: 1, queued_at: "2026-12-07T15:00:00Z", started_at: "2026-12-07T15:00:01Z", completed_at: "2026-12-07T15:00:30Z",
});

const line = (event: string, fields: Record<string, unknown>): LogLine => ({ time: "2026-12-07T15:00:01Z", level: "info", event, slot: 2, ...fields }) as LogLine;

/** Slot 2's log: runner 1 of VM was retired idle, REPLACED started in the same VM, took the job, and the VM died. */
const replacedLines = [
  line("token.done", { vm: VM, runner: VM, runner_id: 1 }),
  line("runner.replaced", { vm: VM, runner: REPLACED, retired: VM, vm_runners: 2 }),
  line("token.done", { vm: VM, runner: REPLACED, runner_id: 2 }),
  line("job.lost", { vm: VM, runner: REPLACED, job: "soak-138" }),
];

const killed = (vms: string[]): Injected => ({ at: 0, slot: 2, spawn: 1, card: "vm-killed@job", kind: "vm-killed", phase: "job", vm: vms[0], applied: true, vms });

function evidence(o: { jobs: JobState[]; injected: Injected[]; lines: LogLine[] }): Evidence {
  return {
    ...o, unfinished: [], spawns: [], logText: [], runs: "", vmsLeft: [], vmsLeftAfterNextStart: [], runnersLeft: [], neighbours: [],
    neighboursNow: { vms: new Map(), runnerIds: new Set() }, findSecrets: () => [], argvLeaks: [], argvSamples: 0, apiCalls: {},
  };
}

describe("soak measure: jobs lost", () => {
  test("a replaced runner's job dies with its VM when a fault killed that VM: died mid-job and reported, not ours", () => {
    const rows = measure(evidence({ jobs: [failedJob("soak-138", REPLACED)], injected: [killed([VM])], lines: replacedLines }));
    expect(rows.lostOurs).toEqual([]);
    expect(rows.diedMidJob).toBe(1);
    expect(rows.diedReported).toBe(1);
  });

  test("a replaced runner's job lost while no fault killed its VM stays ours", () => {
    const rows = measure(evidence({ jobs: [failedJob("soak-138", REPLACED)], injected: [killed(["acme-mac-mini-2-d30f11"])], lines: replacedLines }));
    expect(rows.lostOurs.map((l) => l.job)).toEqual(["soak-138"]);
    expect(rows.diedMidJob).toBe(0);
  });

  test("a fault applied to the runner's name alone does not excuse a job whose VM is another one", () => {
    // The runner's own name is no VM: only the VM it ran in counts.
    const rows = measure(evidence({ jobs: [failedJob("soak-138", REPLACED)], injected: [killed([REPLACED])], lines: replacedLines }));
    expect(rows.lostOurs.map((l) => l.job)).toEqual(["soak-138"]);
  });

  test("without a token.done line the runner's VM is the one of its name, as before", () => {
    const rows = measure(evidence({ jobs: [failedJob("soak-7", VM)], injected: [killed([VM])], lines: [line("job.lost", { vm: VM, runner: VM, job: "soak-7" })] }));
    expect(rows.lostOurs).toEqual([]);
    expect(rows.diedReported).toBe(1);
  });
});
