// Reaching the guest with Local Network privacy withheld (the sim's default,
// as for a LaunchAgent nobody clicked Allow for): the default exec transport
// serves with no connection of ours (or of an ssh we started) to a guest's
// address; the ssh transport serves once the grant is given, and without it
// fails the cycle with a clear error and leaves nothing behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { World } from "../../sim/world.ts";
import { readTrace, type GuestRecord } from "../../bench/measure.ts";
import { count, enqueue, events, exitOf, fileWorld, github, loopBinary, nothingLeft, slots, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** A slot whose tart traces into a file of its own. */
function traced(overrides: Record<string, unknown>, tart: Record<string, unknown> = {}): { s: Slots; trace: string; env: Record<string, string> } {
  const s = slots(world, overrides, { boot_ms: 150, ...tart });
  const trace = join(world.dir, `${s.org}-trace.jsonl`);
  return { s, trace, env: { SIM_TART_TRACE: trace } };
}

const guestEvents = (trace: string) => (existsSync(trace) ? readTrace(trace).filter((r): r is GuestRecord => r.kind === "guest") : []);

describe("Local Network withheld", () => {
  test.concurrent("exec (default): a job is served and no process of ours connects to a guest", async () => {
    const { s, trace, env } = traced({});
    const j = await enqueue(s, "over-exec", "echo served over tart exec");
    await exitOf(loopBinary(s, 1, env), 0);
    expect((await github(s)).jobs.find((x) => x.id === j.id)?.result).toBe("Succeeded");
    const events = guestEvents(trace);
    // The runner went through tart exec and the guest agent …
    expect(events.some((e) => e.event === "tart-exec" && e.command?.includes("ACTIONS_RUNNER_INPUT_JITCONFIG"))).toBe(true);
    // … and nothing of ours (nor an ssh it started) reached a guest's sshd.
    expect(events.filter((e) => (e.event === "connect" || e.event === "refused") && e.ours)).toEqual([]);
    const reach = JSON.parse(readFileSync(join(s.stateDir, "reach-1.json"), "utf8"));
    expect(reach).toMatchObject({ slot: 1, transport: "exec", outcome: "ok" });
  }, 60_000);

  test.concurrent("ssh: refused without the grant: the cycle fails saying why, and nothing is left", async () => {
    const { s, trace, env } = traced({ vm: { transport: "ssh", boot_timeout: "4s" }, host: { backoff_initial: "100ms", backoff_max: "200ms" } });
    const lines = await exitOf(loopBinary(s, 1, env), 1);
    const failed = lines.find((l) => l.level === "error");
    // The sim resets what a Mac refuses at connect(): ssh reports the reset, and the message points at Local Network.
    expect(String(failed?.msg)).toContain("no SSH at");
    expect(String(failed?.msg)).toContain("Local Network");
    const refused = guestEvents(trace).filter((e) => e.event === "refused");
    expect(refused.length).toBeGreaterThan(0);
    // Refused because the peer descends from our binary; and the ssh it started is refused. (A probe's ssh that
    // ended before the guest looked it up, killed at its deadline, has no readable executable left to name.)
    expect(refused.filter((e) => !(e.ours && /macos-runner/.test(e.peer ?? "")))).toEqual([]);
    expect(refused.some((e) => /\/usr\/bin\/ssh.* < .*macos-runner/.test(e.peer ?? ""))).toBe(true);
    await nothingLeft(s);
  }, 60_000);
});

describe("Local Network granted", () => {
  test.concurrent("ssh: a job is served over /usr/bin/ssh", async () => {
    const { s, trace, env } = traced({ vm: { transport: "ssh" } }, { local_network: "granted" });
    const j = await enqueue(s, "over-ssh", "echo served over ssh");
    await exitOf(loopBinary(s, 1, env), 0);
    expect((await github(s)).jobs.find((x) => x.id === j.id)?.result).toBe("Succeeded");
    const events = guestEvents(trace);
    expect(events.some((e) => e.event === "exec" && e.command?.includes("ACTIONS_RUNNER_INPUT_JITCONFIG"))).toBe(true);
    expect(events.filter((e) => e.event === "refused")).toEqual([]);
    expect(events.some((e) => e.event === "connect" && e.ours && /\/usr\/bin\/ssh/.test(e.peer ?? ""))).toBe(true);
  }, 60_000);

  test.concurrent("ssh: exit 255 before the runner printed anything starts it once more with the same JIT config, and the job is served", async () => {
    const { s, trace, env } = traced({ vm: { transport: "ssh" } }, { local_network: "granted", faults: [{ kind: "ssh_drop_runner", count: 1 }] });
    const j = await enqueue(s, "after-a-drop", "echo served after a dropped start");
    const lines = await exitOf(loopBinary(s, 1, env), 0);
    expect(events(lines, "run.retry").map((l) => l.attempt)).toEqual([2]);
    expect((await github(s)).jobs.find((x) => x.id === j.id)).toMatchObject({ result: "Succeeded", attempts: 1 });
    // Two runner starts reached the guest's sshd: the dropped one and the one that ran.
    expect(guestEvents(trace).filter((e) => e.event === "exec" && e.command?.includes("ACTIONS_RUNNER_INPUT_JITCONFIG")).length).toBe(2);
    expect(count((await github(s)).calls, "generate-jitconfig")).toBe(1);
  }, 60_000);
});
