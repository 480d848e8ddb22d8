// The next VM started ahead, in process: the next cycle attaches to the run
// recorded in the state file by its process (pid and start time), never by
// its age, and does not trust a record without the process's start time. How
// tart tells a run by pid and start time is the contract's (tests/contract);
// real processes (one gone with a host restart, a pid reused) and the
// `cleanup` command are in tests/e2e/next-vm.
import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { events, cycleHost, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


interface NextVm {
  name: string;
  run?: { pid: number; pid_start?: string; started_at: string; log_offset: number };
}

const nextVm = (h: CycleHost) => h.state().next_vm as NextVm;

/** Changes what the state file says about the VM started ahead. */
function rewriteRun(h: CycleHost, patch: Record<string, unknown>): void {
  const path = join(h.config.host.stateDir, "slot-1.json");
  const state = JSON.parse(readFileSync(path, "utf8"));
  state.next_vm.run = { ...state.next_vm.run, ...patch };
  writeFileSync(path, JSON.stringify(state));
}

/** launchd's ThrottleInterval: the least time between two starts of the slot's loop. */
const THROTTLE_MS = 1_000;

/** One loop serving one job to success, then launchd's pause before the next; its log lines and the job's runner. */
async function serve(h: CycleHost, name: string) {
  const job = h.enqueue(name);
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect(h.job(job.id).result).toBe("Succeeded");
  await h.clock.advance(THROTTLE_MS);
  return Object.assign(lines, { runner: h.job(job.id).runner_name });
}

test("a VM started ahead is trusted by its process, not its age: a start recorded long ago is attached while that process runs", async () => {
  host = await cycleHost();
  const h = host;
  await serve(h, "first");
  const next = nextVm(h);
  expect(next.run?.pid_start).toBeString();
  rewriteRun(h, { started_at: new Date(h.clock.now() - 10 * 60_000).toISOString() });
  const lines = await serve(h, "second");
  expect(events(lines, "boot.attached").map((l) => l.pid)).toEqual([next.run!.pid]);
  expect(events(lines, "boot.restart")).toEqual([]);
  expect(lines.runner).toBe(next.name);
});

test("a start recorded without the process's start time (an older state file) is not trusted: the VM is forced off and started again", async () => {
  host = await cycleHost();
  const h = host;
  await serve(h, "first");
  const next = nextVm(h);
  rewriteRun(h, { pid_start: undefined });
  const lines = await serve(h, "second");
  expect(events(lines, "boot.attached")).toEqual([]);
  expect(events(lines, "boot.restart").map((l) => l.pid)).toEqual([next.run!.pid]);
  expect(lines.runner).toBe(next.name);
});
