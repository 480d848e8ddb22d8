// tart run NAME: the VM's life in the foreground (Run.swift, §3, §11a):
// argument validation, the MAC check and the running marker under the
// $TART_HOME lock, the 2-VM limit and start failures; the rest is
// vm/lifecycle.ts.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, positional, type CommandSpec } from "../args.ts";
import { TartError, ValidationError, vmAlreadyRunning } from "../errors.ts";
import { isVMDir, localVMNames, randomMAC, readVMConfig, tartHome, vmPath, writeVMConfig } from "../home.ts";
import { withFileLock } from "../filelock.ts";
import { acquireRunMarker, isRunning, releaseRunMarker } from "../running.ts";
import { dropPlace, heldPlaces, takePlace } from "../places.ts";
import { loadSettings } from "../settings.ts";
import { takeFault } from "../faults.ts";
import { runVM } from "../vm/lifecycle.ts";
import { isSuspended, statePath } from "../vm/snapshot.ts";
import { START_FAILURE, vmLimitReached } from "../messages.ts";

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

function validate(argv: string[]) {
  const p = parseArgs(spec, argv);
  if (p.bool.vnc && p.bool["vnc-experimental"]) throw new ValidationError("--vnc and --vnc-experimental are mutually exclusive");
  const net = [Boolean(p.str["net-bridged"]), Boolean(p.bool["net-softnet"]), Boolean(p.bool["net-host"])].filter(Boolean).length;
  if (net > 1) throw new ValidationError("--net-bridged, --net-softnet and --net-host are mutually exclusive");
  if (p.bool.graphics && p.bool["no-graphics"]) throw new ValidationError("--graphics and --no-graphics are mutually exclusive");
  const name = positional(p, 0);
  const dir = vmPath(name);
  // Thrown inside validate(), so printed with the `Error: ` prefix, exit 1.
  if (!existsSync(dir)) throw new TartError(`the specified VM "${name}" does not exist`);
  if (!isVMDir(dir)) throw new TartError("VM is missing some of its files (config.json, disk.img or nvram.bin)");
  // A suspended VM always runs as --suspendable.
  return { name, dir, suspendable: Boolean(p.bool.suspendable) || isSuspended(dir) };
}

export async function run(argv: string[]): Promise<number> {
  const { name, dir, suspendable } = validate(argv);
  const settings = loadSettings();

  // Under the $TART_HOME lock, as tart does: MAC collision, the run marker,
  // and (for the sim) the 2-VM limit, so that concurrent starts count right:
  // the places held by running VMs, by VMs still being torn down, and leaked.
  const { others, full } = withFileLock(join(tartHome(), ".sim-lock"), () => {
    const config = readVMConfig(dir);
    const running = localVMNames().filter((n) => n !== name && isRunning(vmPath(n)));
    if (running.some((n) => readVMConfig(vmPath(n)).macAddress === config.macAddress)) {
      console.log("There is already a running VM with the same MAC address!");
      console.log("Resetting VM to assign a new MAC address...");
      // regenerateMACAddress() also deletes the saved state: the VM cold-boots.
      writeVMConfig(dir, { ...config, macAddress: randomMAC() });
      rmSync(statePath(dir), { force: true });
    }
    if (!acquireRunMarker(dir)) throw vmAlreadyRunning(name);
    const full = heldPlaces(settings.place_release_ms) + settings.leaked_places >= 2;
    if (!full) takePlace(name);
    return { others: running, full };
  });

  const fail = (message: string): number => {
    dropPlace();
    releaseRunMarker(dir);
    process.stderr.write(`${message}\n`);
    return 1;
  };
  if (full) return fail(vmLimitReached(others));
  if (takeFault("start_failure", name)) return fail(START_FAILURE);
  return await runVM({ name, dir, settings, suspendable, noIP: Boolean(takeFault("no_ip", name)), crash: takeFault("crash", name) });
}
