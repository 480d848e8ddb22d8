// tart suspend NAME (Suspend.swift): sends SIGUSR1 to the `tart run` process
// and returns at once; that process pauses the VM, writes state.vzvmsave and
// exits (vm/lifecycle.ts). The not-running message repeats tart's own: it
// wraps an already complete sentence in VMNotRunning's.
import { parseArgs, positional, type CommandSpec } from "../args.ts";
import { RuntimeError, vmNotRunning } from "../errors.ts";
import { openLocalVM } from "../home.ts";
import { runState } from "../running.ts";

export const spec: CommandSpec = {
  name: "suspend",
  usage: "<name>",
  args: ["<name>"],
  flags: {},
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const name = positional(p, 0);
  const pid = runState(openLocalVM(name))?.pid;
  if (pid === undefined) throw vmNotRunning(`VM "${name}" is not running`);
  try {
    process.kill(pid, "SIGUSR1");
  } catch {
    throw new RuntimeError(`Failed to suspend the VM: failed to send SIGUSR1 signal to the "tart run" process running VM "${name}"`);
  }
}
