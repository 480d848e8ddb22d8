// The simulated `tart exec` and guest agent, against what tart's source says
// (Exec.swift, the guest agent's Exec RPC; sim/PROTOCOL.md; a stopped VM's
// exit 2 is in tests/contract): before the agent answers, tart's reconnect
// backoff holds the call and then fails with exit 1; -i streams stdin; the
// exit code is the guest command's; a killed client leaves the guest command
// running; the command is a guest process, so it goes with the VM.
import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TartFixture } from "../../sim/image/fixture.ts";
import { runState } from "../../sim/tart/running.ts";
import { clone, killStarted, pidAlive, startRun, vmDir, waitFor, withTart } from "./helpers.ts";

// Each test has a tart of its own, so they run at once.
const SETTINGS = { ssh_port: 2222, boot_ms: 100, ssh_ms: 100, agent_ms: 1500, exec_connect_timeout_ms: 2000, dead_peer_ms: 1000 };

afterAll(() => killStarted());

const SIM_TART = join(import.meta.dir, "..", "..", "sim", "bin", "tart");
const exec = (fx: TartFixture, args: string[], input?: string) =>
  spawnSync(SIM_TART, ["exec", ...args], { env: { ...process.env, ...fx.env }, encoding: "utf8", input: input ?? "", timeout: 30_000 });
const home = (fx: TartFixture, name: string) => join(vmDir(fx, name), "disk.img", "Users", "admin");

describe.concurrent("tart exec", () => {
  test("before the agent answers it is held by tart's backoff and fails with exit 1; once it answers, commands run with stdin and their exit code", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "booting");
    const run = startRun(fx, "booting");
    await waitFor("a lease", () => runState(vmDir(fx, "booting"))?.ip, 10_000);
    const started = Date.now();
    const early = exec(fx, ["booting", "true"]);
    // agent_ms (1.5 s) is not reached at the retry 1 s in; the call gives up at exec_connect_timeout_ms (2 s).
    expect(early.status).toBe(1);
    expect(early.stderr).toContain("Failed to connect to the VM using its control socket");
    expect(early.stderr).toContain("is the Tart Guest Agent running?");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);

    await waitFor("the agent", () => runState(vmDir(fx, "booting"))?.agent, 10_000);
    const r = exec(fx, ["-i", "booting", "/bin/sh", "-c", 'IFS= read -r secret && printf "%s" "$secret" > got && pwd && exit 7'], "s3cret\n");
    expect(r.status).toBe(7);
    expect(r.stdout.trim()).toBe(home(fx, "booting"));
    expect(readFileSync(join(home(fx, "booting"), "got"), "utf8")).toBe("s3cret");
    // Without -i the command's stdin is closed.
    expect(exec(fx, ["booting", "/bin/sh", "-c", "cat"], "ignored\n").stdout).toBe("");
    // The command is a guest process: it carries the VM's marker.
    expect(exec(fx, ["booting", "/bin/sh", "-c", 'echo "$SIM_TART_VM"']).stdout.trim()).toBe(vmDir(fx, "booting"));

    // A killed client leaves its command running (harsher reading); the VM's power-off takes it.
    const client = spawn(SIM_TART, ["exec", "booting", "/bin/sh", "-c", "echo $$ > pid; sleep 1; touch after-kill; sleep 300"], { env: { ...process.env, ...fx.env }, stdio: "ignore" });
    const pid = await waitFor("the guest pid", () => existsSync(join(home(fx, "booting"), "pid")) && Number(readFileSync(join(home(fx, "booting"), "pid"), "utf8")));
    client.kill("SIGKILL");
    await waitFor("the command to go on", () => existsSync(join(home(fx, "booting"), "after-kill")), 5000);
    expect(pidAlive(pid)).toBe(true);

    // The VM going away ends a running exec at once (its control socket closes), exit 1.
    const held = spawn(SIM_TART, ["exec", "booting", "sleep", "300"], { env: { ...process.env, ...fx.env }, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    held.stderr!.on("data", (d) => (err += d));
    const heldExit = new Promise<number | null>((r) => held.on("exit", (c) => r(c)));
    await Bun.sleep(300);
    run.proc.kill("SIGKILL");
    expect(await heldExit).toBe(1);
    expect(err).toContain("unavailable");
    await waitFor("the guest command killed with the VM", () => !pidAlive(pid), 5000);
  }), 30_000);

  test("tart ip --resolver agent answers once the agent does", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "resolving");
    startRun(fx, "resolving");
    await waitFor("the agent", () => runState(vmDir(fx, "resolving"))?.agent, 10_000);
    const r = spawnSync(SIM_TART, ["ip", "resolving", "--resolver", "agent"], { env: { ...process.env, ...fx.env }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(runState(vmDir(fx, "resolving"))!.ip!);
  }), 20_000);
});
