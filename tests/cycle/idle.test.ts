// An idle slot, in process: GitHub retires a runner that took no job (here at
// a chosen moment of the host's clock, through the simulated GitHub's broker),
// and the slot starts a new runner in the same VM instead of a new VM, until
// vm.idle_reuse_max, a new pin or vm.reuse_idle: false; a stop while the new
// runner is made leaves nothing behind. What needs the real guest (the
// retired runner's files and process in the VM) and a crash of the loop's
// process mid-replacement are in tests/e2e/idle.
import { afterEach, expect, test } from "bun:test";
import { stopController } from "../../lib/core/signals.ts";
import { writeImageLock } from "../../lib/image/pin.ts";
import type { JobState } from "../../sim/github/types.ts";
import { sample, samples } from "../helpers/exposition.ts";
import { until } from "../helpers/e2e.ts";
import { events, cycleHost, onListening, retireIdle, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


/** How long a runner listens before GitHub retires it (minutes on github.com; the length is not the subject here). */
const IDLE_MS = 1_000;
/** A loop that never ends (reuse that does not stop) fails after this much virtual time, not after an hour of polls. */
const MAX_MS = 60_000;

/** This host's GitHub API calls of one kind so far, e.g. "generate-jitconfig" or "DELETE". */
function calls(h: CycleHost, what: string): number {
  const byEndpoint = h.github.state().requests.byAccount.acme ?? {};
  return Object.entries(byEndpoint).filter(([k]) => k.includes(what)).reduce((n, [, c]) => n + c, 0);
}

const allCalls = (h: CycleHost) => Object.values(h.github.state().requests.byAccount.acme ?? {}).reduce((a, b) => a + b, 0);

/** This host's VMs, the slot's golden excepted. */
async function ourVms(h: CycleHost) {
  return (await h.tart.list()).filter((v) => v.Name.startsWith(`${h.prefix}-`) && !v.Name.includes("golden"));
}

test("a runner GitHub retires before any job is replaced in the same VM: one VM, one JIT call per retirement; a job then runs on that VM", async () => {
  host = await cycleHost();
  const h = host;
  let job: JobState | undefined;
  let atJob: { vms: ReturnType<typeof ourVms>; vmRunners: unknown } | undefined;
  onListening(h, (runner, nth) => {
    if (nth <= 3) return retireIdle(h, runner, IDLE_MS);
    atJob = { vms: ourVms(h), vmRunners: h.state().vm_runners };
    job = h.enqueue("after-idle");
  });
  const { code, lines } = await h.loop({ maxMs: MAX_MS });
  expect(code).toBe(0);
  expect(h.job(job!.id).result).toBe("Succeeded");
  const vm = events(lines, "cycle.start")[0]!.vm as string;
  expect(events(lines, "cycle.start")).toHaveLength(1);
  // One VM booted; while idle nothing but it ran, and besides it only the next cycle's VM was cloned ahead.
  expect(events(lines, "boot.done")).toHaveLength(1);
  const idleVms = await atJob!.vms;
  expect(idleVms.filter((v) => v.Running).map((v) => v.Name)).toEqual([vm]);
  expect(idleVms.length).toBeLessThanOrEqual(2);
  expect(atJob!.vmRunners).toBe(4);

  const replaced = events(lines, "runner.replaced");
  expect(replaced).toHaveLength(3);
  expect(new Set(replaced.map((l) => l.vm))).toEqual(new Set([vm]));
  // The job ran on the VM of the first runner, by the last runner started in it.
  expect(h.job(job!.id).runner_name).toBe(replaced.at(-1)!.runner as string);
  expect(events(lines, "cycle.done")[0]!.vm_runners).toBe(4);
  expect(sample(samples(h.metrics()), "macos_runner_runners_replaced_total")).toBe(3);
  // One generate-jitconfig per runner (the first and one per retirement), no DELETE (a retired runner is
  // gone; the last one completed its job); at most one token fetch and one sweep besides.
  expect(calls(h, "generate-jitconfig")).toBe(4);
  expect(calls(h, "DELETE")).toBe(0);
  expect(allCalls(h) - calls(h, "generate-jitconfig")).toBeLessThanOrEqual(2);
  expect(h.github.state().violations).toEqual([]);
  // Every runner that listened in the VM was retired (GitHub deleted it) or ran the job.
  expect(h.github.state().runners).toEqual([]);
});

test("a stop while a retired runner is replaced: the new runner is not started; the slot exits 0 having deleted it, its VM and nothing else", async () => {
  host = await cycleHost();
  const h = host;
  const stop = stopController();
  // The replacement's JIT call (the second) answers 1 s late: the stop comes while the slot waits for it.
  h.github.world.faults.add({ path: "/orgs/acme/actions/runners/generate-jitconfig", latencyMs: 1_000, skip: 1 });
  let stopAsked!: () => void;
  onListening(h, (runner, nth) => {
    if (nth > 1) return;
    // The host's clock stands still until the stop was asked for.
    void h.clock.hold(new Promise<void>((resolve) => (stopAsked = resolve)));
    retireIdle(h, runner);
  });
  const running = h.loop({ stop, maxMs: MAX_MS });
  let vm = "";
  const pending = await until("the replacement asked for", () => {
    const st = h.state();
    vm = st.vm as string;
    return st.phase === "token" && st.runner_name !== undefined && st.runner_name !== vm && (st.runner_name as string);
  }, 10_000, 5).catch((err: unknown) => {
    stopAsked();
    throw err;
  });
  stop.request();
  stopAsked();
  const { code, lines } = await running;
  expect(code).toBe(0);
  expect(events(lines, "runner.replaced")).toEqual([]);
  // Only the VM's first runner listened: the replacement never started.
  expect(events(lines, "run.ready").map((l) => l.runner)).toEqual([vm]);
  // The stop took the new runner off GitHub.
  expect(calls(h, "DELETE")).toBe(1);
  expect(events(lines, "cleanup.runner_removed").map((l) => l.runner)).toContain(pending);
  expect(await ourVms(h)).toEqual([]);
  expect(h.github.state().runners).toEqual([]);
});

test("after vm.idle_reuse_max the next retirement ends the cycle; the next cycle uses a new VM", async () => {
  host = await cycleHost({ config: { vm: { idle_reuse_max: "5s" } } });
  const h = host;
  onListening(h, (runner) => retireIdle(h, runner, IDLE_MS));
  const first = await h.loop({ maxMs: MAX_MS });
  expect(first.code).toBe(0);
  const retired = events(first.lines, "runner.retired");
  expect(retired).toHaveLength(1);
  expect(retired[0]!.msg).toContain("vm.idle_reuse_max is 5 s");
  // Runners were replaced while the VM was younger than the bound (listening 1 s each, the VM up 1 s before the first).
  const replaced = events(first.lines, "runner.replaced");
  expect(replaced.length).toBeGreaterThanOrEqual(2);
  expect(retired[0]!.vm_runners).toBe(replaced.length + 1);
  expect(events(first.lines, "cycle.done")[0]!.outcome).toBe("no-job");
  const firstVm = events(first.lines, "cycle.start")[0]!.vm;

  const job = h.enqueue("fresh");
  const second = await h.loop({ maxMs: MAX_MS });
  expect(second.code).toBe(0);
  expect(h.job(job.id).result).toBe("Succeeded");
  expect(events(second.lines, "cycle.start")[0]!.vm).not.toBe(firstVm);
});

test("a newly pinned image: the next retirement ends the cycle", async () => {
  host = await cycleHost();
  const h = host;
  let pinnedAt = Infinity;
  onListening(h, (runner, nth) => {
    if (nth === 2) {
      // pull pins the tag's digest (any digest other than what the VM was cloned from).
      pinnedAt = h.lines.length;
      writeImageLock(h.config.host.stateDir, { ref: h.config.image.ref, digest: `sha256:${"1".repeat(64)}`, pinned_at: new Date(h.clock.now()).toISOString() });
    }
    retireIdle(h, runner, IDLE_MS);
  });
  const { code, lines } = await h.loop({ maxMs: MAX_MS });
  expect(code).toBe(0);
  // The retirement before the pin got a new runner; the one after it did not.
  const replaced = events(lines, "runner.replaced");
  expect(replaced).toHaveLength(1);
  expect(h.lines.indexOf(replaced[0]!)).toBeLessThan(pinnedAt);
  expect(events(lines, "runner.retired")[0]!.msg).toContain("another image is pinned");
  expect(events(lines, "cycle.done")[0]!.outcome).toBe("no-job");
});

test("vm.reuse_idle: false: a retirement ends the cycle (a new VM each time)", async () => {
  host = await cycleHost({ config: { vm: { reuse_idle: false } } });
  const h = host;
  onListening(h, (runner) => retireIdle(h, runner, IDLE_MS));
  const { code, lines } = await h.loop({ maxMs: MAX_MS });
  expect(code).toBe(0);
  expect(events(lines, "runner.replaced")).toEqual([]);
  expect(events(lines, "runner.retired")[0]!.msg).toContain("vm.reuse_idle is off");
  expect(calls(h, "generate-jitconfig")).toBe(1);
  // The retired runner's VM is off; only the next VM, started ahead, runs.
  expect((await ourVms(h)).filter((v) => v.Running).length).toBeLessThanOrEqual(1);
});

test("vm.start: snapshot: a restored VM whose runner was retired gets a new runner, not a new restore", async () => {
  host = await cycleHost({ config: { vm: { start: "snapshot" } } });
  const h = host;
  let job: JobState | undefined;
  onListening(h, (runner, nth) => {
    if (nth <= 2) return retireIdle(h, runner, IDLE_MS);
    job = h.enqueue("on-restored");
  });
  const { code, lines } = await h.loop({ maxMs: MAX_MS });
  expect(code).toBe(0);
  expect(h.job(job!.id).result).toBe("Succeeded");
  expect(events(lines, "snapshot.restored")).toHaveLength(1);
  expect(events(lines, "cycle.start")).toHaveLength(1);
  expect(events(lines, "runner.replaced")).toHaveLength(2);
  expect(events(lines, "cycle.done")[0]!.vm_runners).toBe(3);
});
