// No failure becomes a restart storm or a storm of GitHub calls, in process:
// each start of the slot is one `loop` as launchd would run it again at once
// (ThrottleInterval 1 s), over a virtual window of minutes. Failing cycles
// back off, doubling up to host.backoff_max; the process boundary (launchd's
// restarts, the pause before a pre-cycle error's exit) is in tests/e2e/storms.
import { afterEach, expect, test } from "bun:test";
import { cycleHost, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

/** launchd's ThrottleInterval: the least time between two starts of a job. */
const THROTTLE_MS = 1_000;

/** Starts slot 1 again and again, as launchd's KeepAlive does, until `windowMs` of virtual time passed; when each start began. */
async function launchdWindow(h: CycleHost, windowMs: number): Promise<number[]> {
  const from = h.clock.now();
  const starts: number[] = [];
  while (h.clock.now() - from < windowMs) {
    const at = h.clock.now();
    starts.push(at - from);
    await h.loop();
    await h.clock.advance(Math.max(0, at + THROTTLE_MS - h.clock.now()));
  }
  return starts;
}

const apiCalls = (h: CycleHost) => h.github.state().requests.total;

/** Each gap between starts at least the one before: the backoff grows, then holds at its cap. */
function expectBackingOff(starts: number[], maxMs: number): void {
  const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
  for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(maxMs + 2 * THROTTLE_MS);
}

test("a revoked installation token: a few starts and calls in ten minutes, backing off to host.backoff_max, not one a second", async () => {
  host = await cycleHost({ config: { host: { backoff_initial: "10s", backoff_max: "2m" } } });
  const h = host;
  h.github.world.faults.add({ pathRegex: "^/orgs/acme/actions/", status: 401, body: { message: "Bad credentials" }, count: 100_000 });
  const before = apiCalls(h);
  const starts = await launchdWindow(h, 600_000);
  // 10 s, 20 s, 40 s, 80 s, then every 2 min: about 8 starts in 10 minutes; a storm would be 600.
  expect(starts.length).toBeGreaterThanOrEqual(5);
  expect(starts.length).toBeLessThanOrEqual(10);
  // Per cycle: the runner refused, a fresh token, the runner refused again. Plus the first start's sweep.
  expect(apiCalls(h) - before).toBeLessThanOrEqual(3 * starts.length + 3);
  expectBackingOff(starts, 120_000);
  expect(h.state().last_failure_kind).toBe("config");
  // Nothing churned on the host: no VM left running.
  expect((await h.tart.list()).filter((v) => v.Running)).toEqual([]);
});
