// tart list: local VMs then OCI cache entries, sorted by name (§2a).
import { statSync } from "node:fs";
import { join } from "node:path";
import { choiceOpt, parseArgs, type CommandSpec } from "../args.ts";
import { localVMNames, vmPath } from "../home.ts";
import { cacheEntries } from "../oci.ts";
import { allocatedBytes, diskBytes, GB } from "../sizes.ts";
import { vmState } from "../state.ts";
import { relativeTime, renderTable } from "../table.ts";

export const spec: CommandSpec = {
  name: "list",
  usage: "[--source <source>] [--format <format>] [--quiet]",
  args: [],
  flags: { source: { kind: "string" }, format: { kind: "string" }, quiet: { kind: "bool", short: "q" } },
};

interface Entry {
  Source: "local" | "OCI";
  Name: string;
  Disk: number;
  Size: number;
  Accessed: string;
  Running: boolean;
  State: string;
}

function entry(source: Entry["Source"], name: string, dir: string): Entry {
  const state = vmState(dir);
  return {
    Source: source,
    Name: name,
    Disk: Math.round(diskBytes(dir) / GB),
    Size: Math.round(allocatedBytes(dir) / GB),
    Accessed: statSync(join(dir, "config.json")).atime.toISOString().replace(/\.\d{3}Z$/, "Z"),
    Running: state === "running",
    State: state,
  };
}

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const source = p.str.source ? choiceOpt(p, "source", ["local", "oci"] as const, "local") : undefined;
  const format = choiceOpt(p, "format", ["text", "json"] as const, "text");
  const entries: Entry[] = [];
  if (source !== "oci") entries.push(...localVMNames().map((n) => entry("local", n, vmPath(n))));
  if (source !== "local") {
    const oci = cacheEntries().sort((a, b) => a.name.localeCompare(b.name));
    entries.push(...oci.map((e) => entry("OCI", e.name, e.path)));
  }
  if (p.bool.quiet) {
    for (const e of entries) console.log(e.Name);
    return;
  }
  if (format === "json") {
    console.log(JSON.stringify(entries, null, 2));
    return;
  }
  // The text table hides the deprecated Running column.
  const text = renderTable(
    entries.map((e) => ({ Source: e.Source, Name: e.Name, Disk: e.Disk, Size: e.Size, Accessed: relativeTime(new Date(e.Accessed)), State: e.State })),
  );
  if (text) console.log(text);
}
