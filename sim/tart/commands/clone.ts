// tart clone SRC NEW: pulls a remote SRC only when it is not cached, copies
// the VM into place (replacing NEW), saved state included, and regenerates
// the MAC when a local VM (the source too) already has it, unless the source
// is suspended: its MAC is frozen in the saved state (Clone.swift).
import { cpSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parseArgs, positional, uintOpt, type CommandSpec } from "../args.ts";
import { TartError, ValidationError } from "../errors.ts";
import { localVMNames, openLocalVM, randomMAC, readVMConfig, sleep, tartHome, tmpDir, vmPath, vmsDir, writeVMConfig } from "../home.ts";
import { withFileLock } from "../filelock.ts";
import { parseRemoteName, resolveCached } from "../oci.ts";
import { pullImage } from "../pull.ts";
import { loadSettings } from "../settings.ts";
import { takeFault } from "../faults.ts";
import { RUN_MARKER } from "../running.ts";
import { isSuspended } from "../vm/snapshot.ts";
import { GUEST_LOG } from "../vm/guest-process.ts";
import { DISK_FULL } from "../messages.ts";

export const spec: CommandSpec = {
  name: "clone",
  usage: "<source-name> <new-name> [--insecure] [--concurrency <concurrency>] [--prune-limit <n>]",
  args: ["<source-name>", "<new-name>"],
  flags: {
    insecure: { kind: "bool" },
    concurrency: { kind: "string", value: "<concurrency>" },
    "prune-limit": { kind: "string", value: "<n>" },
    deduplicate: { kind: "bool" },
  },
};

/** Files of a cache entry or VM that are not part of a clone. */
const NOT_CLONED = new Set(["manifest.json", ".explicitly-pulled", RUN_MARKER, GUEST_LOG]);

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const source = positional(p, 0);
  const newName = positional(p, 1);
  const concurrency = uintOpt(p, "concurrency", "<concurrency>") ?? 4;
  uintOpt(p, "prune-limit", "<n>");
  if (newName.includes("/")) throw new ValidationError("<new-name> should be a local name");
  if (concurrency < 1) throw new ValidationError("network concurrency cannot be less than 1");

  const remote = parseRemoteName(source);
  let sourceDir: string;
  if (remote) {
    sourceDir = resolveCached(remote) ?? (await pullImage(remote, { insecure: Boolean(p.bool.insecure), concurrency }));
  } else {
    sourceDir = openLocalVM(source);
  }

  const settings = loadSettings();
  if (takeFault("clone_disk_full", newName)) throw new TartError(DISK_FULL);
  if (settings.clone_ms > 0) await sleep(settings.clone_ms);

  const tmp = join(tmpDir(), `clone-${randomBytes(6).toString("hex")}`);
  mkdirSync(tmpDir(), { recursive: true });
  try {
    cpSync(sourceDir, tmp, { recursive: true, filter: (src) => !NOT_CLONED.has(src.slice(sourceDir.length + 1)) });
    withFileLock(join(tartHome(), ".sim-lock"), () => {
      const config = readVMConfig(tmp);
      const taken = localVMNames().some((n) => readVMConfig(vmPath(n)).macAddress === config.macAddress);
      if (taken && !isSuspended(sourceDir)) {
        config.macAddress = randomMAC();
        writeVMConfig(tmp, config);
      }
      mkdirSync(vmsDir(), { recursive: true });
      rmSync(vmPath(newName), { recursive: true, force: true });
      renameSync(tmp, vmPath(newName));
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
