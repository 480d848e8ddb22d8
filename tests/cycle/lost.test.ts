// A job GitHub hands to the runner in the instant its VM dies, which the
// runner never announces, in process: cleanup finds the runner busy and
// reports the job lost by runner and VM. A power loss (the loop, the VM and
// its guest dying at once) needs processes to kill: tests/e2e/lost.
import { afterEach, expect, test } from "bun:test";
import { exitCode } from "../../lib/core/errors.ts";
import { events, cycleHost, type CycleHost, whenPolling } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


test("a job handed to the runner as its VM dies, before the runner says so: reported lost by runner and VM at cleanup, the runner kept as a ghost", async () => {
  host = await cycleHost();
  const h = host;
  let jobId: number | undefined;
  // The moment the runner's long-poll is open, GitHub hands it the job and its VM stops, in one turn: the runner's "Running job" never leaves the VM.
  const unwatch = whenPolling(h, (runner) => {
    jobId = h.enqueue("assigned-as-the-vm-dies", "echo never").id;
    expect(h.job(jobId).status).toBe("in_progress");
    void h.tart.forceOff(runner.name);
  });
  const { code, lines } = await h.loop().finally(unwatch);
  expect(code).toBe(exitCode("no-job"));
  const vm = events(lines, "cycle.start")[0]!.vm as string;
  expect(events(lines, "runner.job-started")).toEqual([]);
  const lost = events(lines, "job.lost");
  expect(lost).toHaveLength(1);
  expect([lost[0]!.level, lost[0]!.runner, lost[0]!.vm]).toEqual(["error", vm, vm]);
  expect((h.state().ghosts as { name: string }[]).map((g) => g.name)).toEqual([vm]);
});
