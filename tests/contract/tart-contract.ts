// The contract of tart as the product asks of it (lib/vm/tart.ts `Tart`),
// one suite for both models of tart: TartCli over the compiled fake tart
// (tart-sim.test.ts) and MemoryTart (tart-memory.test.ts). What it checks is
// what the product relies on: missing VMs, the run -> lease -> off cycle, the
// 2-VM limit read from `tart run`'s log and exit as boot reads it, VM places
// freed after a stop, suspend and restore, MACs, the OCI cache, `tart exec`
// before and after the guest agent, and the faults tests inject.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { leaseFor } from "../../lib/vm/leases.ts";
import { cachedDigest } from "../../lib/vm/tart-cache.ts";
import { TartError, VmNotFoundError, vmLimitOthers, type GuestProcess, type RunningVm, type Tart } from "../../lib/vm/tart.ts";
import type { Fault } from "../../sim/tart/settings.ts";

/** What both worlds start with (sim/tart's setting names). */
export const CONTRACT_SETTINGS = { boot_ms: 300, agent_ms: 100, place_release_ms: 100, exec_connect_timeout_ms: 250 };

export interface TartSettingsPatch {
  faults?: Fault[];
  leaked_places?: number;
  place_release_ms?: number;
  exec_connect_timeout_ms?: number;
  agent_ms?: number;
}

/**
 * A fresh world of one model of tart, with CONTRACT_SETTINGS in force. Its
 * guests answer `true`, `sudo sntp -sS SERVER`, `cat` (their stdin) and
 * `[echo WORD && ]sleep N`, and exit 127 for a command they do not have.
 */
export interface TartWorld {
  tart: Tart;
  /** A published image (host/ns:tag) that pull and clone fetch. */
  imageRef: string;
  /** A directory for `tart run`'s log files. */
  dir: string;
  /** The world's time (epoch ms), a sleep on it, and a promise awaited while that time runs (a fake clock's settle). */
  now(): number;
  sleep(ms: number): Promise<void>;
  settle<T>(p: Promise<T>): Promise<T>;
  /** Changes tart's settings, as sim/tart's SIM_TART_CONFIG. */
  configure(patch: TartSettingsPatch): void;
  /** Waits until no VM holds a place (its run ended `releaseMs` ago at least), so the next test meets no limit. */
  placesFreed(releaseMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** How long a `tart run` refused at start (the VM limit, a VZ error) takes at most to exit, on a loaded machine too. */
const REFUSED_WITHIN_MS = 1500;

export function tartContract(model: string, start: () => Promise<TartWorld>): void {
  let w: TartWorld;
  let tart: Tart;
  let n = 0;
  const timeout = 15_000;
  const runs: { name: string; vm: RunningVm; log: string }[] = [];
  /** The place_release_ms in force. */
  let release = CONTRACT_SETTINGS.place_release_ms;

  /** Awaited in the world's time. */
  const s = <T>(p: Promise<T>) => w.settle(p);
  const wait = (ms: number) => s(w.sleep(ms));

  beforeAll(async () => {
    w = await start();
    tart = w.tart;
  });
  afterAll(async () => {
    await w?.stop();
  });

  /** A fresh VM cloned from the image (pulled into the cache first). */
  async function fresh(prefix: string): Promise<string> {
    const name = `${prefix}-${++n}`;
    await s(tart.clone(w.imageRef, name, 60_000));
    return name;
  }

  function run(name: string, o: { suspendable?: boolean } = {}) {
    const log = join(w.dir, `${name}-${runs.length}.log`);
    const vm = tart.run(name, log, o);
    const r = { name, vm, log, output: () => (existsSync(log) ? readFileSync(log, "utf8") : "") };
    runs.push(r);
    return r;
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, withinMs = 5000): Promise<T> {
    const deadline = w.now() + withinMs;
    for (;;) {
      const v = await probe();
      if (v) return v;
      if (w.now() > deadline) throw new Error(`${model}: timed out after ${withinMs} ms waiting for ${what}`);
      await wait(25);
    }
  }

  /** Waits until these runs' VMs run; a run that ends meanwhile fails the test with its output. */
  async function allRunning(...rs: ReturnType<typeof run>[]): Promise<void> {
    let ended: ReturnType<typeof run> | undefined;
    for (const r of rs) void r.vm.exited.then(() => (ended ??= r));
    await until("VMs running", async () => {
      if (ended) throw new Error(`${model}: the run of ${ended.name} ended: ${ended.output() || "no output"}`);
      for (const r of rs) if (!(await s(tart.isRunning(r.name)))) return false;
      return true;
    });
  }

  /** Whether the run exits within `ms` (a start refused), else it runs on. */
  const exitsWithin = (vm: RunningVm, ms = REFUSED_WITHIN_MS) => s(Promise.race([vm.exited, w.sleep(ms).then(() => undefined)]));

  /** Reads a guest command's output from now on; the returned function awaits its end. */
  function collect(p: GuestProcess): () => Promise<{ code: number | null; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += String(d)));
    p.stderr.on("data", (d) => (stderr += String(d)));
    return async () => {
      const { code } = await s(p.exited);
      await wait(10); // the last chunks
      return { code, stdout, stderr };
    };
  }
  const output = (p: GuestProcess) => collect(p)();

  /** Every VM of this file off, and their places free for the next test. */
  async function offAll(): Promise<void> {
    for (const name of new Set(runs.splice(0).map((r) => r.name))) await s(tart.forceOff(name));
    await s(w.placesFreed(release));
  }

  const limitOthers = (log: string) => vmLimitOthers(log)?.sort();

  describe(`${model}: VMs and the cache`, () => {
    test("a clone is listed (tart list's JSON fields), its config.json has its MAC; a delete removes it", async () => {
      const name = await fresh("list");
      const entry = (await s(tart.list())).find((v) => v.Name === name);
      expect(entry).toMatchObject({ Source: "local", Name: name, Running: false, State: "stopped" });
      expect(Object.keys(entry!).sort()).toEqual(["Accessed", "Disk", "Name", "Running", "Size", "Source", "State"]);
      const { Disk, Size, Accessed } = entry as unknown as Record<string, unknown>;
      expect([typeof Disk, typeof Size, typeof Accessed]).toEqual(["number", "number", "string"]);
      const mac = tart.macAddress(name);
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(JSON.parse(readFileSync(join(tart.home, "vms", name, "config.json"), "utf8")).macAddress).toBe(mac);
      await s(tart.delete(name));
      expect((await s(tart.list())).some((v) => v.Name === name)).toBe(false);
      expect(existsSync(join(tart.home, "vms", name))).toBe(false);
    }, timeout);

    test("a missing VM: VmNotFoundError from clone, set, ip and suspend; off, not running, deleted; its run exits 1 saying so", async () => {
      for (const call of [
        (): Promise<unknown> => tart.clone("no-such-vm", "never", 10_000),
        () => tart.set("no-such-vm", { cpu: 4 }),
        () => tart.ip("no-such-vm", 1),
        () => tart.suspend("no-such-vm"),
      ]) {
        await expect(s(call())).rejects.toBeInstanceOf(VmNotFoundError);
      }
      expect(await s(tart.isRunning("no-such-vm"))).toBe(false);
      expect(tart.macAddress("no-such-vm")).toBeUndefined();
      await s(tart.forceOff("no-such-vm"));
      await s(tart.delete("no-such-vm"));
      const r = run("no-such-vm");
      expect((await s(r.vm.exited)).code).toBe(1);
      expect(r.output()).toBe(`Error: the specified VM "no-such-vm" does not exist\n`);
    }, timeout);

    test("pull: listCached has the tag and its digest, and the tag's link in the cache names that digest", async () => {
      await s(tart.pull(w.imageRef, 60_000));
      const cached = await s(tart.listCached());
      const repo = w.imageRef.slice(0, w.imageRef.lastIndexOf(":"));
      const digest = cachedDigest(w.imageRef, tart.home);
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(cached.filter((v) => v.Name.startsWith(repo)).map((v) => [v.Source, v.Name, v.Running]))
        .toEqual([["OCI", w.imageRef, false], ["OCI", `${repo}@${digest}`, false]].sort((a, b) => String(a[1]).localeCompare(String(b[1]))));
      expect((await s(tart.list())).some((v) => v.Name === w.imageRef)).toBe(false);
      const missing = s(tart.pull(`${repo}:no-such-tag`, 60_000));
      await expect(missing).rejects.toThrow(/404/);
      await expect(missing).rejects.not.toBeInstanceOf(VmNotFoundError);
    }, timeout);

    test("MACs: a clone of a VM whose MAC another has gets a new one; set randomMac changes it; set below the minimum CPUs fails", async () => {
      const a = await fresh("mac");
      const b = `${a}-copy`;
      await s(tart.clone(a, b, 10_000));
      expect(tart.macAddress(b)).not.toBe(tart.macAddress(a));
      const before = tart.macAddress(b);
      await s(tart.set(b, { randomMac: true }));
      expect(tart.macAddress(b)).not.toBe(before);
      await s(tart.set(b, { cpu: 4, memoryMb: 8192 }));
      await expect(s(tart.set(b, { cpu: 1 }))).rejects.toThrow(/LessThanMinimalResourcesError/);
    }, timeout);

    test("clone_disk_full: the clone fails and no VM is made; the next clone works", async () => {
      w.configure({ faults: [{ kind: "clone_disk_full", vm: "full-*" }] });
      try {
        await expect(s(tart.clone(w.imageRef, "full-1", 60_000))).rejects.toThrow(/No space left on device/);
        expect((await s(tart.list())).some((v) => v.Name === "full-1")).toBe(false);
        await s(tart.clone(w.imageRef, "full-1", 60_000));
        expect((await s(tart.list())).some((v) => v.Name === "full-1")).toBe(true);
      } finally {
        w.configure({ faults: [] });
      }
    }, timeout);
  });

  describe(`${model}: running VMs`, () => {
    test("run -> ip (from the lease file) -> running -> forceOff -> off; the stale lease still answers", async () => {
      try {
        const name = await fresh("cycle");
        const r = run(name);
        const ip = await s(tart.ip(name, 10));
        expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        expect(leaseFor(join(tart.home, "sim", "dhcpd_leases"), tart.macAddress(name)!, w.now())).toBe(ip);
        expect(await s(tart.isRunning(name))).toBe(true);
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ Running: true, State: "running" });
        await s(tart.forceOff(name));
        expect(await s(r.vm.exited)).toEqual({ code: 0, signal: null });
        expect(r.output()).toBe("Stopping VM...\n");
        expect(await s(tart.isRunning(name))).toBe(false);
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ Running: false, State: "stopped" });
        expect(await s(tart.ip(name, 1))).toBe(ip);
      } finally {
        await offAll();
      }
    }, timeout);

    test("ip of a VM that never ran fails once its wait is over", async () => {
      const name = await fresh("noip");
      const started = w.now();
      await expect(s(tart.ip(name, 1))).rejects.toThrow(/no IP address found, is your VM running\?/);
      expect(w.now() - started).toBeGreaterThanOrEqual(1000);
    }, timeout);

    test("attach: the run is found by its pid and start time, not by another", async () => {
      try {
        const name = await fresh("attach");
        const r = run(name);
        await allRunning(r);
        expect(tart.attach(name, r.vm.pid, undefined)).toBeUndefined();
        expect(tart.attach(name, r.vm.pid, `${r.vm.startTime}-not`)).toBeUndefined();
        const attached = tart.attach(name, r.vm.pid, r.vm.startTime);
        expect(attached?.pid).toBe(r.vm.pid);
        await s(tart.forceOff(name));
        await s(attached!.exited);
      } finally {
        await offAll();
      }
    }, timeout);

    test("a third VM is refused by the 2-VM limit: one line naming the two others, exit 1 at once", async () => {
      try {
        const [a, b, c] = [await fresh("lim"), await fresh("lim"), await fresh("lim")];
        await allRunning(run(a!), run(b!));
        const third = run(c!);
        expect(await exitsWithin(third.vm)).toEqual({ code: 1, signal: null });
        expect(third.output()).toBe(`The number of VMs exceeds the system limit (other running VMs: ${[a, b].sort().join(", ")})\n`);
        expect(limitOthers(third.output())).toEqual([a!, b!].sort());
        expect(await s(tart.isRunning(c!))).toBe(false);
      } finally {
        await offAll();
      }
    }, timeout);

    test("a stopped VM's place frees place_release_ms after it stops: a run meanwhile meets the limit with one VM running", async () => {
      // Long enough for the next `tart run` to start and meet it on a loaded machine.
      w.configure({ place_release_ms: 2000 });
      release = 2000;
      try {
        const [a, b, c] = [await fresh("place"), await fresh("place"), await fresh("place")];
        const second = run(b!);
        await allRunning(run(a!), second);
        const stopped = second.vm.exited.then(() => w.now());
        await s(tart.forceOff(b!));
        const stoppedAt = await s(stopped);
        const early = run(c!);
        expect(await exitsWithin(early.vm)).toEqual({ code: 1, signal: null });
        expect(limitOthers(early.output())).toEqual([a!]);
        // Started again until it runs: not before the place frees (less the time a run takes to start).
        let startedAt = 0;
        await until("a free place", async () => {
          startedAt = w.now();
          return (await exitsWithin(run(c!).vm)) === undefined;
        }, 8000);
        expect(startedAt - stoppedAt).toBeGreaterThanOrEqual(1000);
        expect(await s(tart.isRunning(c!))).toBe(true);
      } finally {
        await offAll();
        w.configure({ place_release_ms: CONTRACT_SETTINGS.place_release_ms });
        release = CONTRACT_SETTINGS.place_release_ms;
      }
    }, timeout);

    test("leaked places: two refuse every run though none runs (no names); with one fewer (a reboot) the VM starts", async () => {
      const name = await fresh("leak");
      w.configure({ leaked_places: 2 });
      try {
        const refused = run(name);
        expect(await exitsWithin(refused.vm)).toEqual({ code: 1, signal: null });
        expect(limitOthers(refused.output())).toEqual([]);
        w.configure({ leaked_places: 1 });
        expect(await exitsWithin(run(name).vm)).toBeUndefined();
        expect(await s(tart.isRunning(name))).toBe(true);
      } finally {
        w.configure({ leaked_places: 0 });
        await offAll();
      }
    }, timeout);

    test("a running VM cannot be deleted (tart: is running); once off it can", async () => {
      try {
        const name = await fresh("busy");
        await allRunning(run(name));
        const refused = s(tart.delete(name, 0));
        await expect(refused).rejects.toThrow(/is running/);
        await expect(refused).rejects.toBeInstanceOf(TartError);
        expect((await s(tart.list())).some((v) => v.Name === name)).toBe(true);
        await s(tart.forceOff(name));
        await s(tart.delete(name));
        expect((await s(tart.list())).some((v) => v.Name === name)).toBe(false);
      } finally {
        await offAll();
      }
    }, timeout);

    test("start_failure: tart run prints VZ's error and exits 1; the VM is not running", async () => {
      const name = await fresh("nostart");
      w.configure({ faults: [{ kind: "start_failure", vm: name }] });
      try {
        const r = run(name);
        expect(await exitsWithin(r.vm)).toEqual({ code: 1, signal: null });
        expect(r.output()).toMatch(/^Error Domain=VZErrorDomain Code=1 "The virtual machine failed to start\."/);
        expect(await s(tart.isRunning(name))).toBe(false);
      } finally {
        w.configure({ faults: [] });
        await offAll();
      }
    }, timeout);

    test("crash after boot: tart run says the guest stopped with an error and exits 0; the VM is off", async () => {
      const name = await fresh("crash");
      w.configure({ faults: [{ kind: "crash", vm: name, after_ms: 200 }] });
      try {
        const r = run(name);
        expect(await s(r.vm.exited)).toEqual({ code: 0, signal: null });
        expect(r.output()).toMatch(/^guest has stopped the virtual machine due to error: Error Domain=VZErrorDomain Code=1 "The virtual machine stopped unexpectedly\."/);
        expect(await s(tart.isRunning(name))).toBe(false);
      } finally {
        w.configure({ faults: [] });
        await offAll();
      }
    }, timeout);
  });

  describe(`${model}: suspend`, () => {
    test("a VM run suspendable is saved (state.vzvmsave, listed suspended); a clone keeps its MAC, and a new MAC spoils it; its next run restores it", async () => {
      try {
        const name = await fresh("susp");
        const first = run(name, { suspendable: true });
        await until("the guest agent", async () => (await output(tart.exec(name, "true"))).code === 0, 5000);
        await s(tart.suspend(name));
        expect(await s(first.vm.exited)).toEqual({ code: 0, signal: null });
        expect(first.output()).toBe("pausing VM to take a snapshot...\ncreating a snapshot...\nsnapshot created successfully! shutting down the VM...\n");
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ Running: false, State: "suspended" });
        expect(existsSync(join(tart.home, "vms", name, "state.vzvmsave"))).toBe(true);

        const copy = `${name}-copy`;
        await s(tart.clone(name, copy, 10_000));
        expect(tart.macAddress(copy)).toBe(tart.macAddress(name)!);
        expect((await s(tart.list())).find((v) => v.Name === copy)).toMatchObject({ State: "suspended" });
        // Saved state is bound to its hardware: a new MAC spoils it, and it stays.
        await s(tart.set(copy, { randomMac: true }));
        const spoilt = run(copy);
        expect(await s(spoilt.vm.exited)).toEqual({ code: 1, signal: null });
        expect(spoilt.output()).toMatch(/^restoring VM state from a snapshot\.\.\.\nError Domain=VZErrorDomain Code=12 "Failed to restore the virtual machine\."/);
        expect((await s(tart.list())).find((v) => v.Name === copy)).toMatchObject({ State: "suspended" });

        const restored = run(name);
        await allRunning(restored);
        await until("restored", () => restored.output().includes("resuming VM..."));
        expect(restored.output()).toBe("restoring VM state from a snapshot...\nresuming VM...\n");
        await until("the guest agent", async () => (await output(tart.exec(name, "true"))).code === 0, 5000);
        expect(existsSync(join(tart.home, "vms", name, "state.vzvmsave"))).toBe(false);
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ Running: true, State: "running" });
      } finally {
        await offAll();
      }
    }, timeout);

    test("a VM not run suspendable: suspend returns, the run says why and exits 1, nothing is saved; a VM not running cannot be suspended", async () => {
      try {
        const name = await fresh("nosusp");
        await expect(s(tart.suspend(name))).rejects.toThrow(/is not running/);
        await expect(s(tart.suspend(name))).rejects.not.toBeInstanceOf(VmNotFoundError);
        const r = run(name);
        await allRunning(r);
        await s(tart.suspend(name));
        expect(await s(r.vm.exited)).toEqual({ code: 1, signal: null });
        expect(r.output()).toMatch(/^Failed to suspend the VM: /);
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ State: "stopped" });
        expect(existsSync(join(tart.home, "vms", name, "state.vzvmsave"))).toBe(false);
      } finally {
        await offAll();
      }
    }, timeout);
  });

  describe(`${model}: a failed restore`, () => {
    test("restore_failure: the next restore fails as a spoilt state does (VZ's error, exit 1, still suspended); the run after it restores", async () => {
      try {
        const name = await fresh("restore-fail");
        run(name, { suspendable: true });
        await until("the guest agent", async () => (await output(tart.exec(name, "true"))).code === 0, 5000);
        await s(tart.suspend(name));
        await until("suspended", async () => (await s(tart.list())).find((v) => v.Name === name)?.State === "suspended");
        w.configure({ faults: [{ kind: "restore_failure", vm: name }] });
        const failed = run(name);
        expect(await s(failed.vm.exited)).toEqual({ code: 1, signal: null });
        expect(failed.output()).toMatch(/^restoring VM state from a snapshot\.\.\.\nError Domain=VZErrorDomain Code=12 "Failed to restore the virtual machine\."/);
        expect((await s(tart.list())).find((v) => v.Name === name)).toMatchObject({ Running: false, State: "suspended" });
        expect(existsSync(join(tart.home, "vms", name, "state.vzvmsave"))).toBe(true);
        const restored = run(name);
        await allRunning(restored);
        await until("restored", () => restored.output().includes("resuming VM..."));
        expect(restored.output()).toBe("restoring VM state from a snapshot...\nresuming VM...\n");
      } finally {
        w.configure({ faults: [] });
        await offAll();
      }
    }, timeout);
  });

  describe(`${model}: tart exec`, () => {
    test("a VM not running or missing: exit 2 saying so", async () => {
      const name = await fresh("exec-off");
      expect(await output(tart.exec(name, "true"))).toEqual({ code: 2, stdout: "", stderr: `VM "${name}" is not running\n` });
      expect(await output(tart.exec("no-such-vm", "true"))).toEqual({ code: 2, stdout: "", stderr: `the specified VM "no-such-vm" does not exist\n` });
    }, timeout);

    test("before the guest agent answers (exec_connect_timeout_ms): tart's control socket error, exit 1; after: commands run with stdin, exit codes kept, 127 for a missing one", async () => {
      try {
        // The agent answers 2 s after the lease: the early exec is early however slowly it starts.
        w.configure({ agent_ms: 2000 });
        const name = await fresh("exec");
        await allRunning(run(name));
        const early = await output(tart.exec(name, "true"));
        expect(early.code).toBe(1);
        expect(early.stderr).toMatch(/^Failed to connect to the VM using its control socket: .*is the Tart Guest Agent running\?\n$/);
        await until("the guest agent", async () => (await output(tart.exec(name, "true"))).code === 0, 10_000);
        expect(await output(tart.exec(name, "cat", { input: "from stdin" }))).toEqual({ code: 0, stdout: "from stdin", stderr: "" });
        expect((await output(tart.exec(name, "sudo sntp -sS time.apple.com"))).code).toBe(0);
        expect((await output(tart.exec(name, "no-such-command"))).code).toBe(127);
      } finally {
        w.configure({ agent_ms: CONTRACT_SETTINGS.agent_ms });
        await offAll();
      }
    }, timeout);

    test("a VM that stops under a command ends it with tart's control-socket error, exit 1", async () => {
      try {
        const name = await fresh("exec-stop");
        run(name);
        await until("the guest agent", async () => (await output(tart.exec(name, "true"))).code === 0, 5000);
        const command = tart.exec(name, "echo started && sleep 30");
        let seen = "";
        command.stdout.on("data", (d) => (seen += String(d)));
        const long = collect(command);
        // Stopped once the command runs, however late a loaded machine started it.
        await until("the command to run", () => seen.includes("started"));
        await s(tart.forceOff(name));
        expect(await long()).toEqual({ code: 1, stdout: "started\n", stderr: "Error: unavailable (14): Transport became inactive\n" });
      } finally {
        await offAll();
      }
    }, timeout);
  });
}
