// Every wait on the guest has a deadline, and a backoff outlives the process,
// in process: a runner that never listens and a job that outruns
// runner.job_timeout end at their deadline; a restart during a persisted
// backoff waits out what is left of it. A runner that never exits after its
// job (ssh-run's runner.exit_timeout, on the compiled binary in real time) is
// in tests/e2e/deadlines.
import { afterEach, expect, test } from "bun:test";
import { exitCode } from "../../lib/core/errors.ts";
import { stopController } from "../../lib/core/signals.ts";
import { loop } from "../../lib/slot/loop.ts";
import { events, cycleHost, runnerThat, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

const running = async (h: CycleHost) => (await h.tart.list()).filter((v) => v.Running).map((v) => v.Name);

/** Waits in real time, the clock standing still, until a loop logged `event`. */
async function logged(h: CycleHost, event: string, withinMs = 5_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!h.lines.some((l) => l.event === event)) {
    if (performance.now() > deadline) throw new Error(`no ${event} logged within ${withinMs} ms of real time`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("a job that outruns runner.job_timeout is cut: exit 83 naming the deadline, the VM cleaned", async () => {
  host = await cycleHost({ config: { runner: { job_timeout: "1500ms" } } });
  const h = host;
  const job = h.enqueue("forever", "sleep 60");
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("timeout"));
  const done = events(lines, "run.done")[0]!;
  expect(done.msg).toContain("runner.job_timeout");
  // Cut at the deadline, not when the job would have ended.
  expect(Number(done.duration_ms)).toBeLessThan(60_000);
  expect(h.job(job.id).status).not.toBe("queued");
  expect(await running(h)).toEqual([]);
});

test("a runner that never prints 'Listening for Jobs': ended after runner.listen_timeout, exit 83, cleaned", async () => {
  host = await cycleHost({ config: { runner: { listen_timeout: "1500ms" } }, runner: runnerThat({ startsAfterMs: 60_000 }) });
  const h = host;
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("timeout"));
  const done = events(lines, "run.done")[0]!;
  expect(done.msg).toContain("runner.listen_timeout");
  // Ended at the deadline, not when the runner would have listened.
  expect(Number(done.duration_ms)).toBe(1500);
  expect(await running(h)).toEqual([]);
  expect(h.github.state().runners).toEqual([]);
});

test("a restart during a persisted backoff waits out what is left of it, no more and no less", async () => {
  host = await cycleHost({ config: { host: { backoff_initial: "30s", backoff_max: "30s" } }, tart: { faults: [{ kind: "clone_disk_full" }] } });
  const h = host;
  // The first start fails and backs off; 10 s into its 30 s it is stopped (launchd's bootout), then started again.
  const stop = stopController();
  const first = loop(h.context(), stop);
  // The failure needs no time on the clock: it stands still until the loop backs off.
  await logged(h, "backoff.start");
  expect(h.state().phase).toBe("backoff");
  const backoffUntil = Date.parse(h.state().backoff_until as string);
  await h.clock.advance(10_000);
  stop.request();
  expect(await h.clock.settle(first, { maxMs: 60_000 })).toBe(exitCode("failure"));
  const restartedAt = h.clock.now();
  const job = h.enqueue("after-the-backoff");
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect(h.job(job.id).result).toBe("Succeeded");
  const wait = events(lines, "backoff.wait")[0]!;
  expect(Number(wait.wait_ms)).toBe(backoffUntil - restartedAt);
  expect(Number(wait.wait_ms)).toBeGreaterThan(0);
  expect(Number(wait.wait_ms)).toBeLessThan(30_000);
  expect(Date.parse(h.state().cycle_started_at as string)).toBe(backoffUntil);
});
