// tart delete NAME...: local VMs (not while running; each takes delete_ms)
// or OCI cache entries, stops at the first error.
import { existsSync, lstatSync, rmSync } from "node:fs";
import { parseArgs, type CommandSpec } from "../args.ts";
import { vmDoesNotExist, vmIsRunning } from "../errors.ts";
import { openLocalVM, sleep } from "../home.ts";
import { cachePath, gcCache, parseRemoteName } from "../oci.ts";
import { isRunning } from "../running.ts";
import { loadSettings } from "../settings.ts";

export const spec: CommandSpec = {
  name: "delete",
  usage: "<name> ...",
  args: ["<name>..."],
  flags: {},
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  for (const name of p.args) {
    const remote = parseRemoteName(name);
    if (remote) {
      const path = cachePath(remote);
      if (!existsSync(path) && !lstatSync(path, { throwIfNoEntry: false })) throw vmDoesNotExist(name);
      rmSync(path, { recursive: true, force: true });
      gcCache();
      continue;
    }
    const dir = openLocalVM(name);
    if (isRunning(dir)) throw vmIsRunning(name);
    await sleep(loadSettings().delete_ms);
    rmSync(dir, { recursive: true, force: true });
  }
}
