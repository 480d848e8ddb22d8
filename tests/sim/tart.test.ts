// sim/tart against tart's contract §1-§3 and §10: outputs, exit codes, the
// running marker, run's lifecycle and signals, the guest's SSH server, stop's
// timeout and faults. Runs the shim as a real process. The 2-VM limit and VM
// places are in tests/contract (both models of tart).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startTartFixture, HOST_KEY_ALIAS, LOCAL_IMAGE_NAME, type TartFixture } from "../../sim/image/fixture.ts";
import { POWER_MARKER } from "../../sim/tart/guest/env.ts";
import { commandLine } from "../../sim/tart/guest/processes.ts";
import { GUEST_LOG } from "../../sim/tart/vm/guest-process.ts";
import { clone as cloneIn, killStarted, placesFreed, running, ssh, sshArgs, startRun, tartAsync, vmDir, waitBooted, waitFor, withTart } from "./helpers.ts";

// The tests of commands share one tart; those of running VMs have one each
// and run at once. These start VMs right after others stopped: a place frees
// at once (its hold is tested in tests/contract).
const SETTINGS = { boot_ms: 150, ssh_ms: 100, ssh_port: 2222, place_release_ms: 0 };
let fx: TartFixture;

beforeAll(async () => {
  fx = await startTartFixture({ registry: false, settings: SETTINGS });
});
afterAll(async () => {
  killStarted();
  await fx?.stop();
});

const clone = (name: string) => cloneIn(fx, name);

describe("CLI conventions", () => {
  test("--version: a current release, or what the settings say", () => {
    expect(fx.tart("--version")).toEqual({ code: 0, stdout: "2.35.0\n", stderr: "" });
    fx.setTart({ version: "2.32.1" });
    try {
      expect(fx.tart("--version")).toEqual({ code: 0, stdout: "2.32.1\n", stderr: "" });
    } finally {
      fx.setTart({ version: undefined });
    }
  });

  test.each([
    [["get", "nope"]],
    [["ip", "nope"]],
    [["stop", "nope"]],
    [["delete", "nope"]],
    [["set", "nope", "--cpu", "4"]],
    [["clone", "nope", "x"]],
  ])("a missing VM is a bare RuntimeError, exit 2: %p", (args) => {
    expect(fx.tart(...args)).toEqual({ code: 2, stdout: "", stderr: 'the specified VM "nope" does not exist\n' });
  });

  test("run of a missing VM fails in validate(): Error: prefix, exit 1", () => {
    expect(fx.tart("run", "nope")).toEqual({ code: 1, stdout: "", stderr: 'Error: the specified VM "nope" does not exist\n' });
  });

  test.each([
    [["clone", LOCAL_IMAGE_NAME, "a/b"], "<new-name> should be a local name"],
    [["clone", LOCAL_IMAGE_NAME, "x", "--concurrency", "0"], "network concurrency cannot be less than 1"],
    [["prune"], "at least one pruning criteria must be specified"],
    [["run", LOCAL_IMAGE_NAME, "--net-softnet", "--net-host"], "--net-bridged, --net-softnet and --net-host are mutually exclusive"],
    [["ip", LOCAL_IMAGE_NAME, "--resolver", "mdns"], "The value 'mdns' is invalid for '--resolver <resolver>'. Please provide one of 'dhcp', 'arp', 'agent'."],
    [["ip", LOCAL_IMAGE_NAME, "--wait", "soon"], "The value 'soon' is invalid for '--wait <wait>'"],
    [["list", "--bogus"], "Unknown option '--bogus'"],
    [["get"], "Missing expected argument '<name>'"],
  ])("validation errors print usage, exit 64: %p", (args, message) => {
    const r = fx.tart(...args);
    expect(r.code).toBe(64);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`Error: ${message}`);
    expect(lines[1]).toStartWith(`Usage: tart ${args[0]} `);
    expect(lines[2]).toBe(`  See 'tart ${args[0]} --help' for more information.`);
  });

  test("pull of a local name has nothing to do", () => {
    expect(fx.tart("pull", "sonoma")).toEqual({ code: 0, stdout: '"sonoma" is a local image, nothing to pull here!\n', stderr: "" });
  });
});

describe("local VMs", () => {
  test("list --format json: fields and types; -q names", () => {
    clone("list-a");
    const list = JSON.parse(fx.tart("list", "--format", "json").stdout) as Record<string, unknown>[];
    const a = list.find((e) => e.Name === "list-a")!;
    expect(a).toEqual({ Source: "local", Name: "list-a", Disk: 50, Size: expect.any(Number), Accessed: expect.any(String), Running: false, State: "stopped" });
    expect(Number.isNaN(Date.parse(a.Accessed as string))).toBe(false);
    expect(fx.tart("list", "-q", "--source", "local").stdout.split("\n")).toContain("list-a");
    const text = fx.tart("list", "--source", "local").stdout.split("\n");
    expect(text[0]?.split(/\s+/)).toEqual(["Source", "Name", "Disk", "Size", "Accessed", "State"]);
    expect(fx.tart("delete", "list-a").code).toBe(0);
  });

  test("list -q prints nothing without VMs", async () => {
    const empty = await startTartFixture({ registry: false });
    try {
      expect(empty.tart("delete", LOCAL_IMAGE_NAME).code).toBe(0);
      expect(empty.tart("list", "-q")).toEqual({ code: 0, stdout: "", stderr: "" });
    } finally {
      await empty.stop();
    }
  });

  test("get --format json: fields and types", () => {
    clone("get-a");
    const info = JSON.parse(fx.tart("get", "get-a", "--format", "json").stdout);
    expect(info).toEqual({ OS: "darwin", CPU: 4, Memory: 8192, Disk: 50, DiskFormat: "raw", Size: expect.stringMatching(/^\d+\.\d{3}$/), Display: "1024x768", Running: false, State: "stopped" });
  });

  test("clone regenerates a MAC another VM has; set --random-mac changes it; the disk is a copy", () => {
    clone("mac-a");
    clone("mac-b");
    const mac = (n: string) => JSON.parse(readFileSync(join(fx.tartHome, "vms", n, "config.json"), "utf8")).macAddress as string;
    expect(mac("mac-a")).not.toBe(mac("mac-b"));
    const before = mac("mac-a");
    expect(fx.tart("set", "mac-a", "--random-mac")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(mac("mac-a")).not.toBe(before);
    expect(mac("mac-a")).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(existsSync(join(fx.tartHome, "vms", "mac-a", "disk.img", "Users", "admin", ".ssh", "authorized_keys"))).toBe(true);
  });

  test("set: cpu below the minimum, memory and display", () => {
    clone("set-a");
    const r = fx.tart("set", "set-a", "--cpu", "2");
    expect(r).toEqual({ code: 1, stdout: "", stderr: "Error: LessThanMinimalResourcesError: VM should have 4 CPU cores at minimum (requested 2)\n" });
    expect(fx.tart("set", "set-a", "--cpu", "6", "--memory", "16384", "--display", "1920x1080").code).toBe(0);
    expect(JSON.parse(fx.tart("get", "set-a", "--format", "json").stdout)).toMatchObject({ CPU: 6, Memory: 16384, Display: "1920x1080" });
    expect(fx.tart("set", "set-a", "--disk-size", "10").code).toBe(1);
  });

  test("delete takes several names and stops at a missing one", () => {
    clone("del-a");
    clone("del-b");
    expect(fx.tart("delete", "del-a", "del-b")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(join(fx.tartHome, "vms", "del-a"))).toBe(false);
    expect(fx.tart("delete", "del-b").code).toBe(2);
  });

  test.concurrent("stop and ip of a stopped VM", async () => {
    clone("idle");
    expect(fx.tart("stop", "idle")).toEqual({ code: 2, stdout: "", stderr: 'VM "idle" is not running\n' });
    // Each `tart ip` takes its sleeps before it fails (1 s, 2 s with the agent): the two at once.
    const [dhcp, agent] = await Promise.all([tartAsync(fx, "ip", "idle"), tartAsync(fx, "ip", "idle", "--resolver", "agent")]);
    expect(dhcp).toEqual({ code: 1, stdout: "", stderr: "no IP address found, is your VM running?\n" });
    expect(agent.stderr).toBe("no IP address found, is your VM running? (also make sure that Guest agent for Tart is running inside of a VM)\n");
  });
});

describe.concurrent("run", () => {
  test("boots silently, serves SSH on its own address, SIGINT stops it; the stale lease stays", () => withTart(SETTINGS, async (fx) => {
    cloneIn(fx, "vm-a");
    const run = startRun(fx, "vm-a");
    await waitFor("running", () => running(fx, "vm-a"));
    const ip = fx.tart("ip", "vm-a", "--wait", "10").stdout.trim();
    expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);
    expect(await waitBooted(fx, "vm-a")).toBe(ip);
    expect(fx.tart("ip", "vm-a", "--resolver", "arp").stdout.trim()).toBe(ip);
    // The guest agent answers agent_ms after the lease, maybe after sshd: --wait polls for it.
    expect((await tartAsync(fx, "ip", "vm-a", "--resolver", "agent", "--wait", "10")).stdout.trim()).toBe(ip);

    const r = ssh(fx, ip, 'printf "%s|%s|%s|" "$USER" "$PWD" "$(cat)"; echo oops >&2; exit 7', "from-stdin");
    expect(r.stdout).toBe(`admin|${join(fx.tartHome, "vms", "vm-a", "disk.img", "Users", "admin")}|from-stdin|`);
    expect(r.stderr).toBe("oops\n");
    expect(r.code).toBe(7);
    expect(ssh(fx, ip, "ls actions-runner").stdout).toContain("run.sh");
    expect(ssh(fx, ip, "kill -TERM $$").code).toBe(255); // exit-signal: ssh reports 255
    expect(ssh(fx, ip, "sudo sh -c 'echo $USER $SUDO_USER'")).toEqual({ code: 0, stdout: "root admin\n", stderr: "" });

    expect(fx.tart("exec", "vm-a", "sh", "-c", 'echo "$USER"; exit 5')).toEqual({ code: 5, stdout: "admin\n", stderr: "" });
    expect(fx.tart("run", "vm-a")).toEqual({ code: 2, stdout: "", stderr: 'VM "vm-a" is already running!\n' });
    expect(fx.tart("delete", "vm-a")).toEqual({ code: 1, stdout: "", stderr: 'VM "vm-a" is running\n' });

    // SIGUSR2 asks the guest to stop; a macOS guest only shows a dialog.
    run.proc.kill("SIGUSR2");
    await waitFor("the request line", () => run.out() === "Requesting guest OS to stop...\n");
    expect(running(fx, "vm-a")).toBe(true);

    expect(fx.tart("stop", "vm-a")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.out()).toBe("Requesting guest OS to stop...\nStopping VM...\n");
    expect(run.err()).toBe("");
    expect(running(fx, "vm-a")).toBe(false);
    // dhcp answers from the lease file even for a stopped VM (issue #172); arp does not.
    expect(fx.tart("ip", "vm-a")).toEqual({ code: 0, stdout: `${ip}\n`, stderr: "" });
    expect((await tartAsync(fx, "ip", "vm-a", "--resolver", "arp")).code).toBe(1);
    expect(fx.tart("exec", "vm-a", "true")).toEqual({ code: 2, stdout: "", stderr: 'VM "vm-a" is not running\n' });
    expect(fx.tart("delete", "vm-a").code).toBe(0);
  }));

  test("the SSH server refuses unknown users and keys; ssh refuses a wrong host key", () => withTart(SETTINGS, async (fx) => {
    cloneIn(fx, "vm-k");
    const run = startRun(fx, "vm-k");
    const ip = await waitBooted(fx, "vm-k");
    expect(ssh(fx, ip, "true").code).toBe(0);
    const asRoot = spawnSync("ssh", [...sshArgs(fx, ip).slice(0, -1), `root@${ip}`, "true"], { encoding: "utf8" });
    expect(asRoot.status).toBe(255);
    const wrongHosts = join(fx.dir, "wrong_known_hosts");
    await Bun.write(wrongHosts, `${HOST_KEY_ALIAS} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQX5ZKxmf0+0ZJ2pLGNbFnhaQ5m0Z4Jm4W9wq8GcBnb\n`);
    const args = sshArgs(fx, ip).map((a) => (a === `UserKnownHostsFile=${fx.knownHostsPath}` ? `UserKnownHostsFile=${wrongHosts}` : a));
    const r = spawnSync("ssh", [...args, "true"], { encoding: "utf8" });
    expect(r.status).toBe(255);
    expect(r.stderr).toContain("HOST IDENTIFICATION HAS CHANGED");
    run.proc.kill("SIGINT");
    await run.exited;
  }));

  test("guest shutdown: `guest has stopped the virtual machine`, exit 0", () => withTart(SETTINGS, async (fx) => {
    cloneIn(fx, "vm-s");
    const run = startRun(fx, "vm-s");
    const ip = await waitBooted(fx, "vm-s");
    expect(ssh(fx, ip, "sudo shutdown -h now").code).toBe(0);
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.out()).toBe("guest has stopped the virtual machine\n");
    expect(running(fx, "vm-s")).toBe(false);
  }));

  test("SIGINT while it waits out an earlier run's power watchdog: it stops, starts no guest, and frees its VM's place", () => withTart(SETTINGS, async (fx) => {
    cloneIn(fx, "vm-early");
    const dir = vmDir(fx, "vm-early");
    const { macAddress } = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { macAddress: string };
    // A predecessor's watchdog that outlives SIGTERM: the run waits up to 2 s for it before starting its own.
    const predecessor = spawn("sh", ["-c", "trap '' TERM; sleep 10", "watchdog", macAddress], { env: { ...process.env, [POWER_MARKER]: dir }, stdio: "ignore" });
    try {
      await waitFor("the predecessor", () => commandLine(predecessor.pid!).includes(macAddress));
      const run = startRun(fx, "vm-early");
      await waitFor("running", () => running(fx, "vm-early"));
      run.proc.kill("SIGINT");
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(run.out()).toBe("Stopping VM...\n");
      expect(existsSync(join(dir, GUEST_LOG))).toBe(false);
      await placesFreed(fx, { running: true }, 2000);
    } finally {
      predecessor.kill("SIGKILL");
    }
  }));

  test("stop -t N: SIGKILL after N s and return at once; -t 0: SIGINT and SIGKILL back to back", () => withTart({ ...SETTINGS, stop_ms: 10_000 }, async (fx) => {
    cloneIn(fx, "stubborn");
    for (const timeout of ["1", "0"]) {
      const run = startRun(fx, "stubborn");
      await waitFor("running", () => running(fx, "stubborn"));
      const t = Date.now();
      expect(fx.tart("stop", "stubborn", "-t", timeout).code).toBe(0);
      const took = Date.now() - t;
      if (timeout === "1") expect(took).toBeGreaterThanOrEqual(1000);
      expect(took).toBeLessThan(timeout === "1" ? 2500 : 900);
      expect((await run.exited).signal).toBe("SIGKILL");
      await waitFor("stopped", () => !running(fx, "stubborn"));
    }
  }));
});

describe("faults from SIM_TART_CONFIG", () => {
  test.concurrent("the next clone fails with disk full, then clones work again", () => withTart({ ...SETTINGS, faults: [{ kind: "clone_disk_full", count: 1 }] }, (fx) => {
    expect(fx.tart("clone", LOCAL_IMAGE_NAME, "full-1")).toEqual({ code: 1, stdout: "", stderr: "Error: The operation couldn’t be completed. No space left on device\n" });
    expect(existsSync(join(fx.tartHome, "vms", "full-1"))).toBe(false);
    expect(fx.tart("clone", LOCAL_IMAGE_NAME, "full-1").code).toBe(0);
  }));

  test.concurrent("start failure targeted by name", () => withTart({ ...SETTINGS, faults: [{ kind: "start_failure", vm: "doomed-*" }] }, async (fx) => {
    cloneIn(fx, "doomed-1");
    const r = startRun(fx, "doomed-1");
    expect((await r.exited).code).toBe(1);
    expect(r.err()).toContain('VZErrorDomain Code=1 "The virtual machine failed to start."');
    expect(running(fx, "doomed-1")).toBe(false);
  }));

  test.concurrent("a VM that never gets an IP", () => withTart({ ...SETTINGS, faults: [{ kind: "no_ip", count: 1 }] }, async (fx) => {
    cloneIn(fx, "dark");
    const run = startRun(fx, "dark");
    await waitFor("running", () => running(fx, "dark"));
    expect(await tartAsync(fx, "ip", "dark", "--wait", "2")).toEqual({ code: 1, stdout: "", stderr: "no IP address found\n" });
    run.proc.kill("SIGINT");
    expect((await run.exited).code).toBe(0);
  }));

  test.concurrent("a VM that crashes after boot: tart run says so on stdout and exits 0 (VM.swift didStopWithError)", () => withTart({ ...SETTINGS, faults: [{ kind: "crash", count: 1, after_ms: 300 }] }, async (fx) => {
    cloneIn(fx, "crashy");
    const run = startRun(fx, "crashy");
    // It crashes 300 ms after its sshd answers: a probe for the boot could miss that window, so only the end is awaited.
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(fx.tart("ip", "crashy").code).toBe(0); // it had booted: its lease outlives it
    expect(run.out()).toStartWith('guest has stopped the virtual machine due to error: Error Domain=VZErrorDomain Code=1 "The virtual machine stopped unexpectedly."');
    expect(run.err()).toBe("");
    expect(running(fx, "crashy")).toBe(false);
  }));
});
