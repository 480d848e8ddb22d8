// tart get NAME: the VM's configuration (JSON field names and types per §2).
import { choiceOpt, parseArgs, positional, type CommandSpec } from "../args.ts";
import { openLocalVM, readVMConfig } from "../home.ts";
import { allocatedBytes, diskBytes, GB } from "../sizes.ts";
import { vmState } from "../state.ts";
import { renderTable } from "../table.ts";

export const spec: CommandSpec = {
  name: "get",
  usage: "<name> [--format <format>]",
  args: ["<name>"],
  flags: { format: { kind: "string" } },
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const format = choiceOpt(p, "format", ["text", "json"] as const, "text");
  const dir = openLocalVM(positional(p, 0));
  const config = readVMConfig(dir);
  const state = vmState(dir);
  const info = {
    OS: config.os,
    CPU: config.cpuCount,
    Memory: Math.floor(config.memorySize / 1024 / 1024),
    Disk: Math.round(diskBytes(dir) / GB),
    DiskFormat: config.diskFormat,
    Size: (allocatedBytes(dir) / GB).toFixed(3),
    Display: `${config.display.width}x${config.display.height}`,
    Running: state === "running",
    State: state,
  };
  if (format === "json") {
    console.log(JSON.stringify(info, null, 2));
    return;
  }
  const { Running: _, ...shown } = info;
  console.log(renderTable([shown]));
}
