// tart stop NAME [-t N] (Stop.swift): a suspended VM just loses its saved
// state; a running one gets SIGINT, then the lock is polled every 100 ms for
// N s; when it is still held, SIGKILL and return at once. `-t 0` sends SIGINT
// and SIGKILL back to back. A run process that exits between the last poll
// and the SIGKILL makes the kill fail, and tart reports that.
import { rmSync } from "node:fs";
import { parseArgs, positional, uintOpt, type CommandSpec } from "../args.ts";
import { RuntimeError, vmNotRunning } from "../errors.ts";
import { openLocalVM, sleep } from "../home.ts";
import { runState } from "../running.ts";
import { vmState } from "../state.ts";
import { statePath } from "../vm/snapshot.ts";

export const spec: CommandSpec = {
  name: "stop",
  usage: "<name> [--timeout <timeout>]",
  args: ["<name>"],
  flags: { timeout: { kind: "string", short: "t", value: "<timeout>" } },
};

const ERRNO: Record<string, string> = { ESRCH: "No such process", EPERM: "Operation not permitted" };

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const timeout = uintOpt(p, "timeout", "<timeout>") ?? 30;
  const name = positional(p, 0);
  const dir = openLocalVM(name);
  const state = vmState(dir);
  if (state === "suspended") return rmSync(statePath(dir), { force: true });
  const pid = runState(dir)?.pid;
  if (state === "stopped" || pid === undefined) throw vmNotRunning(name);
  try {
    process.kill(pid, "SIGINT");
  } catch {}
  for (let left = timeout * 1000; left > 0; left -= 100) {
    if (!runState(dir)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    throw new RuntimeError(`failed to forcefully terminate the VM "${name}": ${ERRNO[code] ?? code}`);
  }
}
