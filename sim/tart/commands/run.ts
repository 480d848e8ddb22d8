// tart run NAME: the VM's life in the foreground (Run.swift, §3). Silent
// boot; after boot_ms the guest gets a lease on its own 127.0.0.x and serves
// SSH. SIGINT -> `Stopping VM...`, exit 0; SIGTERM has no handler; a guest
// shutdown -> `guest has stopped the virtual machine`, exit 0. However the
// process ends, a watchdog kills the guest's processes.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, type CommandSpec } from "../args.ts";
import { TartError, ValidationError, vmAlreadyRunning } from "../errors.ts";
import { isVMDir, localVMNames, randomMAC, readVMConfig, sleep, tartHome, vmPath, writeVMConfig } from "../home.ts";
import { withFileLock } from "../filelock.ts";
import { offerAddress, recordLease } from "../leases.ts";
import { processStartTime } from "../process.ts";
import { acquireRunMarker, isRunning, releaseRunMarker, updateRunMarker } from "../running.ts";
import { loadSettings, takeFault } from "../settings.ts";
import { guestRoot } from "../guest/fs.ts";
import { killGuestProcesses, pgidFile, resetGuestProcesses } from "../guest/processes.ts";

export const spec: CommandSpec = {
  name: "run",
  usage: "<name> [--no-graphics] [--serial] [--no-audio] [--no-clipboard] [--recovery] [--vnc] [--vnc-experimental] [--disk <path[:ro]> ...] [--dir <[name:]path[:options]> ...] [--net-bridged <interface name> ...] [--net-softnet] [--net-host] [--suspendable] [--nested]",
  args: ["<name>"],
  flags: {
    "no-graphics": { kind: "bool" },
    graphics: { kind: "bool" },
    serial: { kind: "bool" },
    "serial-path": { kind: "string" },
    "no-audio": { kind: "bool" },
    "no-clipboard": { kind: "bool" },
    recovery: { kind: "bool" },
    vnc: { kind: "bool" },
    "vnc-experimental": { kind: "bool" },
    disk: { kind: "string", multiple: true },
    "root-disk-opts": { kind: "string" },
    dir: { kind: "string", multiple: true },
    "net-bridged": { kind: "string", multiple: true },
    "net-softnet": { kind: "bool" },
    "net-softnet-allow": { kind: "string" },
    "net-softnet-block": { kind: "string" },
    "net-softnet-expose": { kind: "string" },
    "net-host": { kind: "bool" },
    suspendable: { kind: "bool" },
    nested: { kind: "bool" },
  },
};

const START_FAILURE = `Error Domain=VZErrorDomain Code=1 "The virtual machine failed to start." UserInfo={NSLocalizedFailure=The virtual machine failed to start.}`;
const CRASH = `Error Domain=VZErrorDomain Code=1 "The virtual machine stopped unexpectedly." UserInfo={NSLocalizedFailure=Internal Virtualization error. The virtual machine stopped unexpectedly.}`;

function validate(argv: string[]) {
  const p = parseArgs(spec, argv);
  if (p.bool.vnc && p.bool["vnc-experimental"]) throw new ValidationError("--vnc and --vnc-experimental are mutually exclusive");
  const net = [Boolean(p.str["net-bridged"]), Boolean(p.bool["net-softnet"]), Boolean(p.bool["net-host"])].filter(Boolean).length;
  if (net > 1) throw new ValidationError("--net-bridged, --net-softnet and --net-host are mutually exclusive");
  if (p.bool.graphics && p.bool["no-graphics"]) throw new ValidationError("--graphics and --no-graphics are mutually exclusive");
  const name = p.args[0];
  const dir = vmPath(name);
  // Thrown inside validate(), so printed with the `Error: ` prefix, exit 1.
  if (!existsSync(dir)) throw new TartError(`the specified VM "${name}" does not exist`);
  if (!isVMDir(dir)) throw new TartError("VM is missing some of its files (config.json, disk.img or nvram.bin)");
  return { name, dir };
}

export async function run(argv: string[]): Promise<number> {
  const { name, dir } = validate(argv);
  const settings = loadSettings();

  // Under the $TART_HOME lock, as tart does: MAC collision, the run marker,
  // and (for the sim) the 2-VM limit, so that concurrent starts count right.
  const others = withFileLock(join(tartHome(), ".sim-lock"), () => {
    const config = readVMConfig(dir);
    const running = localVMNames().filter((n) => n !== name && isRunning(vmPath(n)));
    if (running.some((n) => readVMConfig(vmPath(n)).macAddress === config.macAddress)) {
      console.log("There is already a running VM with the same MAC address!");
      console.log("Resetting VM to assign a new MAC address...");
      writeVMConfig(dir, { ...config, macAddress: randomMAC() });
    }
    if (!acquireRunMarker(dir)) throw vmAlreadyRunning(name);
    return running;
  });

  const fail = (message: string): number => {
    releaseRunMarker(dir);
    process.stderr.write(`${message}\n`);
    return 1;
  };
  if (others.length >= 2) return fail(`The number of VMs exceeds the system limit (other running VMs: ${others.join(", ")})`);
  if (takeFault("start_failure", name)) return fail(START_FAILURE);

  resetGuestProcesses(dir);
  const start = processStartTime(process.pid) ?? "";
  spawn(process.execPath, [join(import.meta.dir, "..", "guest", "watchdog.ts"), String(process.pid), start, pgidFile(dir)], {
    detached: true,
    stdio: "ignore",
  }).unref();

  let closeSSH = () => {};
  let ending = false;
  const powerOff = async (code: number, message: string, toStderr = false, delayMs = 0) => {
    if (ending) return;
    ending = true;
    (toStderr ? process.stderr : process.stdout).write(`${message}\n`);
    if (delayMs > 0) await sleep(delayMs);
    killGuestProcesses(pgidFile(dir));
    closeSSH();
    releaseRunMarker(dir);
    process.exit(code);
  };
  process.on("SIGINT", () => void powerOff(0, "Stopping VM...", false, settings.stop_ms));
  setInterval(() => {}, 1 << 30); // the VM runs until something ends it

  await sleep(settings.boot_ms);
  if (ending) return 0;
  const noIP = takeFault("no_ip", name);
  const crash = takeFault("crash", name);
  if (!noIP) {
    try {
      closeSSH = await boot(dir, settings.ssh_port, settings.lease_s, () => void powerOff(0, "guest has stopped the virtual machine"));
    } catch (err) {
      await powerOff(1, `guest failed to boot: ${(err as Error).message}`, true);
    }
  }
  if (crash) setTimeout(() => void powerOff(1, CRASH, true), crash.after_ms ?? 0);
  return await new Promise<number>(() => {});
}

/** DHCP lease, then sshd on the leased address; retries another address if one is taken. */
async function boot(dir: string, port: number, leaseSeconds: number, onShutdown: () => void): Promise<() => void> {
  const { startGuestSSH } = await import("../guest/ssh-server.ts");
  const mac = readVMConfig(dir).macAddress;
  const taken = new Set<string>();
  for (;;) {
    const ip = offerAddress(mac, (a) => taken.has(a));
    try {
      const ssh = await startGuestSSH({ vmDir: dir, root: guestRoot(dir), host: ip, port, onShutdown });
      recordLease(mac, ip, leaseSeconds);
      updateRunMarker(dir, { booted: true, ip });
      return () => ssh.close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || taken.size > 50) throw err;
      taken.add(ip);
    }
  }
}
