// Suspend and restore (tart's contract §11a): `tart suspend`, state.vzvmsave,
// the restore on the next `tart run`, the stale guest clock, clones of a
// suspended VM and their MACs, hardware changes that spoil the saved state,
// and the restore_failure fault.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TartFixture } from "../../sim/image/fixture.ts";
import { readVMConfig } from "../../sim/tart/home.ts";
import { runState } from "../../sim/tart/running.ts";
import { clone, getJSON, killStarted, pidAlive, placesFreed, ssh, startRun, vmDir, waitBooted, waitFor, withTart, type Run } from "./helpers.ts";

// Each test has a tart of its own, so they run at once. Its VMs start right
// after others stopped: a place frees at once (its hold is tested in
// tests/contract). A restore takes restore_ms; the test of that time has its
// own, longer one.
const SETTINGS = { ssh_port: 2222, boot_ms: 100, ssh_ms: 100, suspend_ms: 100, restore_ms: 100, place_release_ms: 0 };
const RESTORE_MS = 600;

afterAll(() => killStarted());

const stateFile = (fx: TartFixture, name: string) => join(vmDir(fx, name), "state.vzvmsave");
const SUSPEND_LINES = "pausing VM to take a snapshot...\ncreating a snapshot...\nsnapshot created successfully! shutting down the VM...\n";
const RESTORE_ERROR = 'Error Domain=VZErrorDomain Code=12 "Failed to restore the virtual machine."';

/** Boots NAME as --suspendable and suspends it; returns the address it had. */
async function bootAndSuspend(fx: TartFixture, name: string): Promise<string> {
  // The VM before it may still be ending on a loaded machine: its place would refuse this run.
  await placesFreed(fx, { running: true }, 15_000);
  clone(fx, name);
  const run = startRun(fx, name, ["--suspendable"]);
  const ip = await waitBooted(fx, name);
  expect(fx.tart("suspend", name)).toEqual({ code: 0, stdout: "", stderr: "" });
  expect(await run.exited).toEqual({ code: 0, signal: null });
  expect(run.out()).toBe(SUSPEND_LINES);
  return ip;
}

async function stop(run: Run): Promise<void> {
  run.proc.kill("SIGINT");
  await run.exited;
}

describe.concurrent("suspend", () => {
  test("writes state.vzvmsave and ends the run process; list and get say suspended", () => withTart(SETTINGS, async (fx) => {
    await bootAndSuspend(fx, "sus-a");
    expect(existsSync(stateFile(fx, "sus-a"))).toBe(true);
    expect(getJSON(fx, "sus-a")).toMatchObject({ Running: false, State: "suspended" });
    const listed = JSON.parse(fx.tart("list", "--format", "json").stdout).find((e: { Name: string }) => e.Name === "sus-a");
    expect(listed).toMatchObject({ Running: false, State: "suspended" });
  }));

  test("suspend of a VM that is not running: tart's doubled message, exit 2", () => withTart(SETTINGS, (fx) => {
    clone(fx, "off");
    expect(fx.tart("suspend", "off")).toEqual({ code: 2, stdout: "", stderr: 'VM "VM "off" is not running" is not running\n' });
    expect(fx.tart("suspend", "nope")).toEqual({ code: 2, stdout: "", stderr: 'the specified VM "nope" does not exist\n' });
  }));

  test("tart stop of a suspended VM discards its state, silently", () => withTart(SETTINGS, async (fx) => {
    await bootAndSuspend(fx, "sus-stop");
    expect(fx.tart("stop", "sus-stop")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(stateFile(fx, "sus-stop"))).toBe(false);
    expect(getJSON(fx, "sus-stop").State).toBe("stopped");
  }));
});

describe.concurrent("restore", () => {
  test("takes restore_ms, deletes the state, the lease and sshd at once; the clock is stale until `sudo sntp -sS`", () => withTart({ ...SETTINGS, restore_ms: RESTORE_MS }, async (fx) => {
    await bootAndSuspend(fx, "sus-r");
    const t = Date.now();
    const run = startRun(fx, "sus-r");
    await waitFor("resuming", () => run.out().includes("resuming VM...\n"));
    expect(Date.now() - t).toBeGreaterThanOrEqual(RESTORE_MS);
    expect(run.out()).toBe("restoring VM state from a snapshot...\nresuming VM...\n");
    expect(existsSync(stateFile(fx, "sus-r"))).toBe(false);
    const resumedAt = Date.now();
    const ip = await waitBooted(fx, "sus-r");
    expect(Date.now() - resumedAt).toBeLessThan(1500);
    expect(fx.tart("ip", "sus-r").stdout).toBe(`${ip}\n`);

    const clockFile = ssh(fx, ip, 'echo "$SIM_GUEST_CLOCK_FILE"').stdout.trim();
    expect(existsSync(clockFile)).toBe(true);
    // Setting the clock needs root.
    expect(ssh(fx, ip, "sntp -sS time.apple.com")).toMatchObject({ code: 1, stderr: "sntp: clock_settime: Operation not permitted\n" });
    expect(existsSync(clockFile)).toBe(true);
    const synced = ssh(fx, ip, "sudo sntp -sS time.apple.com");
    expect(synced.code).toBe(0);
    expect(synced.stdout).toMatch(/^\+\d+\.\d{6} \+\/- \d\.\d{6} time\.apple\.com /);
    expect(existsSync(clockFile)).toBe(false);

    // A restored VM runs as --suspendable: it can be suspended again.
    expect(fx.tart("suspend", "sus-r").code).toBe(0);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(stateFile(fx, "sus-r"))).toBe(true);
  }));

  test("guest processes do not survive a suspend", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "sus-p");
    const first = startRun(fx, "sus-p", ["--suspendable"]);
    const ip = await waitBooted(fx, "sus-p");
    expect(ssh(fx, ip, "sleep 295 </dev/null >/dev/null 2>&1 & echo $! > pid").code).toBe(0);
    const pid = Number(readFileSync(join(vmDir(fx, "sus-p"), "disk.img", "Users", "admin", "pid"), "utf8"));
    fx.tart("suspend", "sus-p");
    await first.exited;
    const second = startRun(fx, "sus-p");
    await waitBooted(fx, "sus-p");
    expect(pidAlive(pid)).toBe(false);
    await stop(second);
  }));

  test("a cold boot has a clock in sync", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "cold");
    const run = startRun(fx, "cold");
    const ip = await waitBooted(fx, "cold");
    expect(ssh(fx, ip, 'test ! -e "$SIM_GUEST_CLOCK_FILE"').code).toBe(0);
    await stop(run);
  }));
});

describe.concurrent("clones of a suspended VM", () => {
  test("copy the state and keep the MAC; the second of two running with one MAC gets a new MAC and cold-boots", () => withTart(SETTINGS, async (fx) => {
    await bootAndSuspend(fx, "golden");
    clone(fx, "slot-1", "golden");
    clone(fx, "slot-2", "golden");
    const mac = readVMConfig(vmDir(fx, "golden")).macAddress;
    expect(readVMConfig(vmDir(fx, "slot-1")).macAddress).toBe(mac);
    expect(readVMConfig(vmDir(fx, "slot-2")).macAddress).toBe(mac);
    expect(existsSync(stateFile(fx, "slot-1"))).toBe(true);

    const one = startRun(fx, "slot-1");
    await waitFor("slot-1 running", () => runState(vmDir(fx, "slot-1")));
    const two = startRun(fx, "slot-2");
    await waitBooted(fx, "slot-2");
    expect(two.out()).toBe("There is already a running VM with the same MAC address!\nResetting VM to assign a new MAC address...\n");
    expect(readVMConfig(vmDir(fx, "slot-2")).macAddress).not.toBe(mac);
    expect(existsSync(stateFile(fx, "slot-2"))).toBe(false);
    await waitFor("slot-1 resumed", () => one.out().endsWith("resuming VM...\n"));
    await Promise.all([stop(one), stop(two)]);
  }));
});

describe.concurrent("a saved state that cannot be restored", () => {
  test.each([[["--random-mac"]], [["--random-serial"]], [["--cpu", "6"]], [["--memory", "16384"]]])(
    "after tart set %p: VZ restore error on stderr, exit 1, the VM stays suspended",
    (flags: string[]) => withTart(SETTINGS, async (fx) => {
      const name = `spoilt${flags.join("").replace(/-/g, "")}`;
      await bootAndSuspend(fx, name);
      expect(fx.tart("set", name, ...flags).code).toBe(0);
      for (let attempt = 0; attempt < 2; attempt++) {
        const run = startRun(fx, name);
        expect((await run.exited).code).toBe(1);
        expect(run.out()).toBe("restoring VM state from a snapshot...\n");
        expect(run.err()).toStartWith(RESTORE_ERROR);
        expect(getJSON(fx, name).State).toBe("suspended");
      }
    }),
  );

  test("the restore_failure fault: the next restore fails the same way", () => withTart(SETTINGS, async (fx) => {
    await bootAndSuspend(fx, "unlucky");
    fx.setTart({ faults: [{ kind: "restore_failure", vm: "unlucky" }] });
    const failed = startRun(fx, "unlucky");
    expect((await failed.exited).code).toBe(1);
    expect(failed.err()).toStartWith(RESTORE_ERROR);
    const again = startRun(fx, "unlucky");
    await waitBooted(fx, "unlucky");
    // Its output is read as it comes: it may lag behind the marker that says booted.
    await waitFor("resumed", () => again.out().endsWith("resuming VM...\n"));
    expect(again.out()).toBe("restoring VM state from a snapshot...\nresuming VM...\n");
    await stop(again);
  }));
});
