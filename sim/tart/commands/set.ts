// tart set NAME: edits config.json (cpu, memory, display, MAC, serial, disk size). Silent.
import { randomBytes } from "node:crypto";
import { opt, parseArgs, positional, uintOpt, type CommandSpec } from "../args.ts";
import { RuntimeError, TartError, ValidationError } from "../errors.ts";
import { openLocalVM, randomMAC, readVMConfig, writeVMConfig } from "../home.ts";
import { diskBytes } from "../sizes.ts";

export const spec: CommandSpec = {
  name: "set",
  usage: "<name> [--cpu <cpu>] [--memory <memory>] [--display <display>] [--[no-]display-refit] [--random-mac] [--random-serial] [--disk <disk>] [--disk-size <disk-size>]",
  args: ["<name>"],
  flags: {
    cpu: { kind: "string", value: "<cpu>" },
    memory: { kind: "string", value: "<memory>" },
    display: { kind: "string", value: "<display>" },
    "display-refit": { kind: "bool" },
    "no-display-refit": { kind: "bool" },
    "random-mac": { kind: "bool" },
    "random-serial": { kind: "bool" },
    disk: { kind: "string", value: "<disk>" },
    "disk-size": { kind: "string", value: "<disk-size>" },
  },
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const cpu = uintOpt(p, "cpu", "<cpu>");
  const memory = uintOpt(p, "memory", "<memory>");
  const diskSize = uintOpt(p, "disk-size", "<disk-size>");
  const display = opt(p, "display");
  const displayMatch = display === undefined ? undefined : /^(\d+)x(\d+)(pt|px)?$/.exec(display);
  if (display !== undefined && !displayMatch) throw new ValidationError(`The value '${display}' is invalid for '--display <display>'`);

  const dir = openLocalVM(positional(p, 0));
  const config = readVMConfig(dir);
  if (cpu !== undefined) {
    if (cpu < config.cpuCountMin) {
      throw new TartError(`LessThanMinimalResourcesError: VM should have ${config.cpuCountMin} CPU cores at minimum (requested ${cpu})`);
    }
    config.cpuCount = cpu;
  }
  if (memory !== undefined) {
    const bytes = memory * 1024 * 1024;
    if (bytes < config.memorySizeMin) {
      throw new TartError(`LessThanMinimalResourcesError: VM should have ${config.memorySizeMin / 1024 / 1024} megabytes of memory at minimum (requested ${memory})`);
    }
    config.memorySize = bytes;
  }
  if (displayMatch) {
    config.display = { width: Number(displayMatch[1]), height: Number(displayMatch[2]), ...(displayMatch[3] ? { unit: displayMatch[3] } : {}) };
  }
  if (p.bool["display-refit"]) config.displayRefit = true;
  if (p.bool["no-display-refit"]) config.displayRefit = false;
  if (p.bool["random-mac"]) config.macAddress = randomMAC();
  if (p.bool["random-serial"]) config.ecid = randomBytes(8).toString("hex");
  if (diskSize !== undefined) {
    const current = diskBytes(dir);
    if (diskSize * 1e9 < current) {
      throw new RuntimeError(`new disk size of ${diskSize}GB should be larger than the current disk size of ${Math.round(current / 1e9)}GB`);
    }
    config.simDiskSize = diskSize * 1e9;
  }
  writeVMConfig(dir, config);
}
