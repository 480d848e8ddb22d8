// Apple's VM places, in process: a place still being freed after its VM
// stopped is waited for; places leaked by macOS (the limit reached with no VM
// running) make the host degraded: one error line, the longest backoff, no VM
// churn, no runner made, until a reboot frees them.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import { sample, samples } from "../helpers/exposition.ts";
import { events, cycleHost, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


test("leaked VM places (the limit with none running): the host is degraded — one host.degraded line, no VM churn, host.backoff_max, metrics say so; after the reboot it serves on the kept clone", async () => {
  host = await cycleHost({ tart: { leaked_places: 2 } });
  const h = host;
  const names: string[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    const { code, lines } = await h.loop();
    expect(code).toBe(exitCode("tempfail"));
    const degraded = events(lines, "host.degraded");
    expect(degraded.map((l) => l.level)).toEqual(["error"]);
    expect(degraded[0]!.msg).toContain("reboot the Mac");
    expect(events(lines, "cycle.failed")).toEqual([]);
    const st = h.state() as { host_degraded_at?: string; backoff_until: string; last_failure_at: string };
    expect(typeof st.host_degraded_at).toBe("string");
    // The longest backoff at once (host.backoff_max), not the first step.
    expect(Date.parse(st.backoff_until) - Date.parse(st.last_failure_at)).toBe(h.config.host.backoffMaxMs);
    // No churn: the one clone is kept for the next try, never started, never a runner.
    const ours = (await h.tart.list()).filter((v) => v.Name.startsWith(`${h.prefix}-`));
    expect(ours.map((v) => v.Running)).toEqual([false]);
    names.push(ours[0]!.Name);
    // The next start of the slot waits out the backoff first.
    await h.clock.advance(h.config.host.backoffMaxMs);
  }
  expect(names[1]).toBe(names[0]);
  expect(h.github.state().runners).toEqual([]);
  const prom = samples(h.metrics());
  expect(sample(prom, "macos_runner_host_degraded")).toBe(1);
  expect(sample(prom, "macos_runner_failures_total", { reason: "host_degraded" })).toBe(2);

  // The reboot frees the places: the next cycle serves on the kept clone, and the host is no longer degraded.
  h.tart.configure({ leaked_places: 0 });
  const job = h.enqueue("after-the-reboot");
  const { code } = await h.loop();
  expect(code).toBe(0);
  expect(h.job(job.id).result).toBe("Succeeded");
  expect(h.job(job.id).runner_name).toBe(names[0]);
  expect(h.state().host_degraded_at).toBeUndefined();
  expect(sample(samples(h.metrics()), "macos_runner_host_degraded")).toBe(0);
});

test("a VM place still being freed (a VM just stopped) is waited for, not a failed cycle", async () => {
  // Places free 6 s after their VM stops: before boot's 10 s bound on waiting for one (past it the host counts as degraded).
  host = await cycleHost({ tart: { place_release_ms: 6_000 } });
  const h = host;
  // Two VMs that are not ours run, then stop: their places free 6 s later.
  for (const name of ["leaving-a", "leaving-b"]) {
    await h.tart.clone(h.config.image.ref, name, 60_000);
    h.tart.run(name, join(h.config.host.logDir, `${name}.log`));
  }
  await h.clock.settle((async () => {
    while ((await h.tart.list()).filter((v) => v.Running).length < 2) await h.clock.sleep(10);
  })(), { maxMs: 5_000 });
  for (const name of ["leaving-a", "leaving-b"]) await h.clock.settle(h.tart.forceOff(name), { maxMs: 10_000 });
  const job = h.enqueue("place-freed");
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect(h.job(job.id).result).toBe("Succeeded");
  expect(events(lines, "boot.place_wait")).toHaveLength(1);
  expect(events(lines, "cycle.failed")).toEqual([]);
});
