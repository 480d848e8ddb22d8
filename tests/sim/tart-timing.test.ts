// sim/tart's clock: timing profiles and scale, the times clone, delete and
// stop take, `ip --wait` re-reading the leases once a second as IP.swift
// does, the lease coming before sshd answers, and the runner start time
// handed to the guest.
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_IMAGE_NAME, SIM_BIN } from "../../sim/image/fixture.ts";
import { renderLeases } from "../../sim/tart/dhcpd-leases.ts";
import { PROFILES } from "../../sim/tart/profiles.ts";
import { resolveSettings } from "../../sim/tart/settings.ts";
import { runState } from "../../sim/tart/running.ts";
import { clone, killStarted, ssh, startRun, tartAsync, vmDir, waitBooted, waitFor, withTart } from "./helpers.ts";

// Each test that runs tart has a tart of its own, so they run at once.
const SETTINGS = { ssh_port: 2222, boot_ms: 150, ssh_ms: 100 };

afterAll(() => killStarted());

async function timed<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const v = await fn();
  return [v, Date.now() - t];
}

describe("profiles", () => {
  test("fast is the default; realistic and scaled carry the published figures", () => {
    expect(resolveSettings({})).toMatchObject({ profile: "fast", scale: 1, ...PROFILES.fast, ssh_port: 22, lease_s: 86400, dead_peer_ms: 30_000 });
    expect(PROFILES.realistic).toEqual({
      clone_ms: 100, boot_ms: 13_000, ssh_ms: 2_000, agent_ms: 3_000, runner_start_ms: 1_500, stop_ms: 1_000, place_release_ms: 2_000, delete_ms: 500, suspend_ms: 5_000, restore_ms: 5_000, pull_ms: 4_000,
    });
    expect(PROFILES.scaled).toMatchObject({ clone_ms: 200, boot_ms: 2_500, stop_ms: 250 });
  });

  test("explicit times override the profile; scale multiplies every time, explicit ones too, but not dead_peer_ms or lease_s", () => {
    const s = resolveSettings({ profile: "realistic", scale: 0.1, boot_ms: 3000, dead_peer_ms: 9000, lease_s: 600 });
    expect(s).toMatchObject({ boot_ms: 300, ssh_ms: 200, clone_ms: 10, restore_ms: 500, dead_peer_ms: 9000, lease_s: 600 });
  });

  test.concurrent("a bad profile or scale is an error naming the file's key", () => withTart(SETTINGS, (fx) => {
    expect(() => resolveSettings({ profile: "slow" as never })).toThrow("unknown profile 'slow' (one of fast, scaled, realistic)");
    expect(() => resolveSettings({ scale: -1 })).toThrow("scale must be a number >= 0, got -1");
    fx.setTart({ profile: "slow" as never });
    const r = fx.tart("clone", LOCAL_IMAGE_NAME, "never");
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Error: SIM_TART_CONFIG ${fx.settingsPath}: unknown profile 'slow' (one of fast, scaled, realistic)\n`);
  }));
});

describe.concurrent("commands take their time", () => {
  test("clone takes clone_ms, delete delete_ms (scaled); stop waits for the run process's stop_ms", () => withTart({ ...SETTINGS, clone_ms: 1600, delete_ms: 1200, stop_ms: 1000, scale: 0.5 }, async (fx) => {
    // Timed without blocking the other tests. Their short blocking calls can lengthen what is
    // measured, so the times are long enough that a command without its sleep stays short of them.
    const [cloned, cloneTook] = await timed(() => tartAsync(fx, "clone", LOCAL_IMAGE_NAME, "slow-1"));
    expect(cloned.code).toBe(0);
    expect(cloneTook).toBeGreaterThanOrEqual(800);
    const [r, deleteTook] = await timed(() => tartAsync(fx, "delete", "slow-1"));
    expect(r.code).toBe(0);
    expect(deleteTook).toBeGreaterThanOrEqual(600);

    expect((await tartAsync(fx, "clone", LOCAL_IMAGE_NAME, "slow-2")).code).toBe(0);
    const run = startRun(fx, "slow-2");
    await waitFor("running", () => runState(vmDir(fx, "slow-2")));
    const [stop, stopTook] = await timed(() => tartAsync(fx, "stop", "slow-2"));
    expect(stop.code).toBe(0);
    expect(stopTook).toBeGreaterThanOrEqual(500);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.out()).toBe("Stopping VM...\n");
  }));
});

describe.concurrent("ip --wait", () => {
  test("--wait 0 tries once, then sleeps a second before failing", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "idle");
    const [r, took] = await timed(() => tartAsync(fx, "ip", "idle"));
    expect(r).toEqual({ code: 1, stdout: "", stderr: "no IP address found, is your VM running?\n" });
    expect(took).toBeGreaterThanOrEqual(1000);
  }));

  test("--wait N reads the leases at once, then once a second: a lease written just after a read is seen a second later", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "polled");
    const mac = JSON.parse(readFileSync(join(vmDir(fx, "polled"), "config.json"), "utf8")).macAddress as string;
    const started = Date.now();
    const ip = spawn(join(SIM_BIN, "tart"), ["ip", "polled", "--wait", "5"], { env: { ...process.env, ...fx.env } });
    let out = "";
    ip.stdout.on("data", (d) => (out += d));
    const answered = new Promise<number>((r) => ip.on("exit", () => r(Date.now())));
    // tart's first read happens within ~100 ms of its start; write the lease after it.
    await Bun.sleep(400);
    const leases = join(fx.tartHome, "sim", "dhcpd_leases");
    mkdirSync(join(fx.tartHome, "sim"), { recursive: true });
    writeFileSync(leases, renderLeases([{ mac, ip: "127.0.0.250", expires: Math.floor(Date.now() / 1000) + 60, name: "x" }]));
    const done = await answered;
    expect(out).toBe("127.0.0.250\n");
    expect(done - started).toBeGreaterThanOrEqual(900);
  }));
});

describe.concurrent("boot", () => {
  test("the lease comes boot_ms after `tart run`, sshd answers ssh_ms after the lease", () => withTart({ ...SETTINGS, boot_ms: 300, ssh_ms: 1500 }, async (fx) => {
    clone(fx, "late-ssh");
    const started = Date.now();
    const run = startRun(fx, "late-ssh");
    const ip = await waitFor("the lease", () => runState(vmDir(fx, "late-ssh"))?.ip);
    expect(fx.tart("ip", "late-ssh").stdout).toBe(`${ip}\n`);
    expect(runState(vmDir(fx, "late-ssh"))?.booted).toBeUndefined();
    const early = ssh(fx, ip, "true");
    expect(early.code).toBe(255);
    expect(early.stderr).toContain("Connection refused");
    await waitBooted(fx, "late-ssh");
    // Timed from before `tart run` (boot_ms + ssh_ms): a late look at the lease, while
    // another test blocks this process, would shorten a time taken from it.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1800);
    expect(ssh(fx, ip, "true").code).toBe(0);
    run.proc.kill("SIGINT");
    await run.exited;
  }));

  test("the guest's environment carries SIM_RUNNER_START_MS (scaled), SIM_TART_VM and SIM_GUEST_CLOCK_FILE", () => withTart({ ...SETTINGS, runner_start_ms: 900, scale: 0.5 }, async (fx) => {
    clone(fx, "env-vm");
    const run = startRun(fx, "env-vm");
    const ip = await waitBooted(fx, "env-vm");
    const r = ssh(fx, ip, 'echo "$SIM_RUNNER_START_MS|$SIM_TART_VM|$SIM_GUEST_CLOCK_FILE"');
    const [startMs, vm, clock] = r.stdout.trim().split("|");
    expect(startMs).toBe("450");
    expect(vm).toBe(vmDir(fx, "env-vm"));
    expect(clock).toStartWith(join(vmDir(fx, "env-vm"), "disk.img"));
    run.proc.kill("SIGINT");
    await run.exited;
  }));
});
