// A simulated VM's power: when it goes off, every process of its guest goes
// with it, whatever its process group or session; a forced or crashed
// power-off is silent to TCP peers (frozen guest, killed dead_peer_ms later),
// while a guest's own shutdown closes connections; and a dropped SSH
// connection does not stop the command it ran.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TartFixture } from "../../sim/image/fixture.ts";
import { runState } from "../../sim/tart/running.ts";
import { clone, commandRuns, killStarted, pidAlive, procState, ssh, startRun, startSSH, vmDir, waitBooted, waitFor, withTart } from "./helpers.ts";

// Each test has a tart of its own, so they run at once. Its VMs start right
// after others stopped: a place frees at once (its hold is tested in tests/contract).
const SETTINGS = { ssh_port: 2222, boot_ms: 100, ssh_ms: 100, place_release_ms: 0 };

afterAll(() => killStarted());

const home = (fx: TartFixture, name: string) => join(vmDir(fx, name), "disk.img", "Users", "admin");

// Four guest processes no process-group kill would reach together: a new
// session, one whose environment was cleared (found as a child of a guest
// process), its parent, and a job due to leave a file a second from now.
const SCATTER = `
setsid sleep 300 </dev/null >/dev/null 2>&1 &
echo $! >> pids
sh -c 'env -i sleep 301 & echo $! >> pids; wait' </dev/null >/dev/null 2>&1 &
echo $! >> pids
sh -c 'sleep 1; touch late-marker' </dev/null >/dev/null 2>&1 &
echo $! >> pids
`;

async function scatter(fx: TartFixture, name: string, ip: string): Promise<number[]> {
  expect(ssh(fx, ip, SCATTER).code).toBe(0);
  const file = join(home(fx, name), "pids");
  return await waitFor("four pids", () => {
    const pids = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map(Number) : [];
    return pids.length === 4 && pids;
  });
}

describe.concurrent("power-off takes every guest process", () => {
  test("tart stop: all frozen at once, whatever their session, and killed dead_peer_ms later; the job never finishes", () => withTart({ ...SETTINGS, dead_peer_ms: 1500 }, async (fx) => {
    clone(fx, "scattered");
    const run = startRun(fx, "scattered");
    const ip = await waitBooted(fx, "scattered");
    const pids = await scatter(fx, "scattered", ip);
    expect(pids.every(pidAlive)).toBe(true);

    expect(fx.tart("stop", "scattered").code).toBe(0);
    expect(pids.map(procState)).toEqual(["T", "T", "T", "T"]);
    await run.exited;
    await waitFor("all killed", () => !pids.some(pidAlive), 5000);
    expect(existsSync(join(home(fx, "scattered"), "late-marker"))).toBe(false);
  }));

  test("a SIGKILLed `tart run` is silent: an ssh client notices only by its keepalive; the address stays taken", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "silent");
    const run = startRun(fx, "silent");
    const ip = await waitBooted(fx, "silent");
    const guarded = startSSH(fx, ip, "sleep 291", ["-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2"]);
    const plain = startSSH(fx, ip, "sleep 292");
    await Promise.all([commandRuns("sleep 291"), commandRuns("sleep 292")]);
    const killedAt = Date.now();
    run.proc.kill("SIGKILL");
    expect(await guarded.exited).toBe(255);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1500);
    expect(guarded.err()).toContain(`Timeout, server ${ip} not responding.`);
    // Without keepalive the client still waits: nothing closed its connection.
    expect(pidAlive(plain.proc.pid!)).toBe(true);

    clone(fx, "next");
    const next = startRun(fx, "next");
    expect(await waitBooted(fx, "next")).not.toBe(ip);
    next.proc.kill("SIGINT");
    plain.proc.kill("SIGKILL");
    await next.exited;
  }));

  test("SIGTERM (no handler) powers off the same way; a connection closes only when the frozen guest is killed", () => withTart({ ...SETTINGS, dead_peer_ms: 1500 }, async (fx) => {
    clone(fx, "termed");
    const run = startRun(fx, "termed");
    const ip = await waitBooted(fx, "termed");
    const session = startSSH(fx, ip, "sleep 293");
    await commandRuns("sleep 293");
    const t = Date.now();
    run.proc.kill("SIGTERM");
    expect((await run.exited).signal).toBe("SIGTERM");
    expect(runState(vmDir(fx, "termed"))).toBeUndefined();
    expect(await session.exited).toBe(255);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1400);
  }));

  test("a new run with the VM's MAC ends its frozen predecessor and gets its address; a new VM under the name does not", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "again");
    let run = startRun(fx, "again");
    const firstIP = await waitBooted(fx, "again");
    const first = startSSH(fx, firstIP, "sleep 296");
    await commandRuns("sleep 296");
    run.proc.kill("SIGKILL");
    await run.exited;

    expect(fx.tart("delete", "again").code).toBe(0);
    clone(fx, "again"); // another MAC
    run = startRun(fx, "again");
    const secondIP = await waitBooted(fx, "again");
    expect(secondIP).not.toBe(firstIP);
    expect(pidAlive(first.proc.pid!)).toBe(true);
    const second = startSSH(fx, secondIP, "sleep 297");
    await commandRuns("sleep 297");
    run.proc.kill("SIGKILL");
    await run.exited;

    run = startRun(fx, "again"); // the same MAC
    expect(await second.exited).toBe(255);
    expect(await waitBooted(fx, "again")).toBe(secondIP);
    expect(pidAlive(first.proc.pid!)).toBe(true);
    first.proc.kill("SIGKILL");
    run.proc.kill("SIGINT");
    await run.exited;
  }));

  test("the guest's own shutdown ends its processes and closes connections at once", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "polite");
    const run = startRun(fx, "polite");
    const ip = await waitBooted(fx, "polite");
    const session = startSSH(fx, ip, "sleep 294");
    await commandRuns("sleep 294");
    const t = Date.now();
    expect(ssh(fx, ip, "sudo shutdown -h now").code).toBe(0);
    expect(await session.exited).toBe(255);
    expect(Date.now() - t).toBeLessThan(1500);
    expect(await run.exited).toEqual({ code: 0, signal: null });
  }));
});

describe.concurrent("ssh", () => {
  test("killing the local ssh client does not stop the remote command (no pty, no hangup)", () => withTart(SETTINGS, async (fx) => {
    clone(fx, "orphan");
    const run = startRun(fx, "orphan");
    const ip = await waitBooted(fx, "orphan");
    const session = startSSH(fx, ip, "sleep 1.5; touch done-after-all");
    await commandRuns("sleep 1.5");
    session.proc.kill("SIGKILL");
    await session.exited;
    await waitFor("the command to finish", () => existsSync(join(home(fx, "orphan"), "done-after-all")), 5000);
    run.proc.kill("SIGINT");
    await run.exited;
  }));
});
