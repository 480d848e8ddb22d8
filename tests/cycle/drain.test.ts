// Stopping a slot, in process: the stop launchd's bootout asks for is
// `stop.request()` on the Stop given to loop() (how SIGTERM, SIGHUP and a
// second signal become those requests is in tests/e2e/drain). A running job
// finishes; an idle runner is taken off GitHub before its VM is touched, so
// no job is ever handed to a runner we are stopping; a second request cuts
// the job; a stop is obeyed while the VM boots.
import { afterEach, expect, test } from "bun:test";
import { stopController } from "../../lib/core/signals.ts";
import { until } from "../helpers/e2e.ts";
import { events, cycleHost, type CycleHost, whenPolling } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


/** The slot's runner deletions on GitHub. */
const deletes = (h: CycleHost) => Object.entries(h.github.state().requests.byEndpoint).filter(([k]) => k.startsWith("DELETE ")).reduce((n, [, c]) => n + c, 0);

async function expectNothingLeft(h: CycleHost): Promise<void> {
  expect((await h.tart.list()).map((v) => v.Name)).toEqual([]);
  expect(h.github.state().runners).toEqual([]);
}

test("a second request cuts the job short: it fails once (GitHub never re-queues it), no VM runs, exit 0", async () => {
  // GitHub gives up on the silent runner's job a second after its session goes quiet (GitHub: minutes).
  host = await cycleHost({ github: { sessionLeaseMs: 1_000, lostRunnerBusyMs: 200 } });
  const h = host;
  const job = h.enqueue("cut-short", "sleep 60");
  const stop = stopController();
  void h.when("runner.job-started").then(async () => {
    stop.request();
    await h.when("run.draining");
    stop.request();
    // The cleanup's calls to GitHub take no time on the job's scale: the job's clock waits until its VM is off.
    void h.clock.hold(h.when("cleanup.vm"));
  });
  const { code, lines } = await h.loop({ stop });
  expect(code).toBe(0);
  expect(events(lines, "run.draining")).toHaveLength(1);
  expect(events(lines, "run.done").map((l) => l.outcome)).toEqual(["stopped"]);
  expect(events(lines, "runner.job-completed")).toEqual([]);
  expect((await h.tart.list()).filter((v) => v.Running)).toEqual([]);
  await until("the cut job failed", () => h.job(job.id).result === "Failed", 10_000);
  expect(h.job(job.id).attempts).toBe(1);
});

test("a drain with an idle runner: the runner leaves GitHub (one DELETE) before its VM stops; exit 0, nothing left", async () => {
  host = await cycleHost();
  const h = host;
  const stop = stopController();
  void h.when("run.ready").then(() => stop.request());
  // What GitHub holds the moment the VM has been forced off.
  const runnersAtVmStop = h.when("cleanup.vm").then(() => h.github.state().runners);
  const { code, lines } = await h.loop({ stop });
  expect(code).toBe(0);
  expect(events(lines, "run.stopping")).toHaveLength(1);
  expect(deletes(h)).toBe(1);
  expect(await runnersAtVmStop).toEqual([]);
  await expectNothingLeft(h);
});

// A job queued at the moment of the stop races GitHub's dispatch against our
// DELETE of the idle runner. Either way it is never lost: handed over first,
// it runs to success on our runner; not yet handed over, it stays queued.
test("a job GitHub hands to the runner as the stop comes, before the runner says so: our DELETE is refused and the job runs to success; exit 0, nothing left", async () => {
  host = await cycleHost();
  const h = host;
  const stop = stopController();
  let jobId: number | undefined;
  // The moment the runner's long-poll is open, GitHub hands it the job and the stop comes, in one turn.
  const unwatch = whenPolling(h, () => {
    jobId = h.enqueue("handed-over-as-we-stop", "sleep 5").id;
    expect(h.job(jobId).status).toBe("in_progress");
    stop.request();
    // Our DELETE takes no time on the job's scale: the job's clock waits for GitHub's answer to it.
    void h.clock.hold(Promise.race([h.when("run.draining"), h.when("run.stopping")]));
  });
  const { code, lines } = await h.loop({ stop }).finally(unwatch);
  expect(code).toBe(0);
  expect(events(lines, "run.draining").map((l) => l.msg)).toEqual([expect.stringContaining("just as GitHub assigned a job")]);
  expect(events(lines, "run.stopping")).toEqual([]);
  const job = h.job(jobId!);
  expect([job.result, job.attempts, job.runner_name]).toEqual(["Succeeded", 1, events(lines, "cycle.start")[0]!.vm]);
  await expectNothingLeft(h);
});

test("a job queued as the stop comes, not yet handed over when our DELETE lands: it stays queued for another runner; exit 0, nothing left", async () => {
  // GitHub takes its time to dispatch (seconds of real time): our DELETE is first.
  host = await cycleHost({ github: { assignDelayMs: 60_000 } });
  const h = host;
  const stop = stopController();
  let jobId: number | undefined;
  void h.when("run.ready").then(() => {
    jobId = h.enqueue("queued-as-we-stop").id;
    stop.request();
  });
  const { code, lines } = await h.loop({ stop });
  expect(code).toBe(0);
  expect(events(lines, "run.stopping")).toHaveLength(1);
  expect(deletes(h)).toBe(1);
  const job = h.job(jobId!);
  expect([job.status, job.attempts]).toEqual(["queued", 0]);
  await expectNothingLeft(h);
});

test("a drain while the VM boots: no runner is made, the VM is removed, exit 0", async () => {
  host = await cycleHost({ tart: { boot_ms: 4_000 } });
  const h = host;
  const stop = stopController();
  let phase: unknown;
  void h.when("clone.done").then(async () => {
    await h.clock.sleep(1_000);
    phase = h.state().phase;
    stop.request();
  });
  const { code } = await h.loop({ stop });
  expect(code).toBe(0);
  expect(phase).toBe("boot");
  expect(h.github.state().requests.byEndpoint["POST /orgs/{org}/actions/runners/generate-jitconfig"]).toBeUndefined();
  await expectNothingLeft(h);
});
