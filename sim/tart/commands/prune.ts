// tart prune: drops OCI cache entries (or stopped local VMs) older than N days
// or beyond a space budget, least recently accessed first. Silent.
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { choiceOpt, parseArgs, uintOpt, type CommandSpec } from "../args.ts";
import { ValidationError } from "../errors.ts";
import { localVMNames, vmPath } from "../home.ts";
import { cacheEntries, gcCache } from "../oci.ts";
import { isRunning } from "../running.ts";
import { allocatedBytes } from "../sizes.ts";

export const spec: CommandSpec = {
  name: "prune",
  usage: "[--entries <entries>] [--older-than <n>] [--space-budget <n>]",
  args: [],
  flags: {
    entries: { kind: "string" },
    "older-than": { kind: "string", value: "<n>" },
    "space-budget": { kind: "string", value: "<n>" },
    "cache-budget": { kind: "string", value: "<n>" },
    gc: { kind: "bool" },
  },
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const entries = choiceOpt(p, "entries", ["caches", "vms"] as const, "caches");
  const olderThan = uintOpt(p, "older-than", "<n>");
  const budget = uintOpt(p, "space-budget", "<n>") ?? uintOpt(p, "cache-budget", "<n>");
  if (olderThan === undefined && budget === undefined && !p.bool.gc) {
    throw new ValidationError("at least one pruning criteria must be specified");
  }
  if (p.bool.gc) gcCache();

  const candidates =
    entries === "vms"
      ? localVMNames().map((n) => vmPath(n)).filter((d) => !isRunning(d))
      : cacheEntries().filter((e) => !e.isSymlink).map((e) => e.path);
  const withTimes = candidates
    .map((path) => ({ path, accessed: statSync(join(path, "config.json")).atimeMs, size: allocatedBytes(path) }))
    .sort((a, b) => b.accessed - a.accessed);
  if (olderThan !== undefined) {
    const cutoff = Date.now() - olderThan * 86400_000;
    for (const e of withTimes.filter((x) => x.accessed < cutoff)) rmSync(e.path, { recursive: true, force: true });
  }
  if (budget !== undefined) {
    let used = 0;
    for (const e of withTimes) {
      used += e.size;
      if (used > budget * 1024 ** 3) rmSync(e.path, { recursive: true, force: true });
    }
  }
  if (entries === "caches") gcCache();
}
