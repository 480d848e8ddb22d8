// tart stop NAME [-t N]: SIGINT to the run process, poll every 100 ms; when
// the timeout runs out, SIGKILL and return at once (Stop.swift).
import { existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, uintOpt, type CommandSpec } from "../args.ts";
import { RuntimeError, vmNotRunning } from "../errors.ts";
import { openLocalVM, sleep } from "../home.ts";
import { runState } from "../running.ts";

export const spec: CommandSpec = {
  name: "stop",
  usage: "<name> [--timeout <timeout>]",
  args: ["<name>"],
  flags: { timeout: { kind: "string", short: "t", value: "<timeout>" } },
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const timeout = uintOpt(p, "timeout", "<timeout>") ?? 30;
  const name = p.args[0];
  const dir = openLocalVM(name);
  const state = runState(dir);
  if (!state) {
    const saved = join(dir, "state.vzvmsave");
    if (existsSync(saved)) return unlinkSync(saved);
    throw vmNotRunning(name);
  }
  process.kill(state.pid, "SIGINT");
  const deadline = Date.now() + timeout * 1000;
  while (Date.now() < deadline) {
    if (!runState(dir)) return;
    await sleep(100);
  }
  try {
    process.kill(state.pid, "SIGKILL");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") {
      throw new RuntimeError(`failed to forcefully terminate the VM "${name}": ${(err as NodeJS.ErrnoException).code}`);
    }
  }
}
