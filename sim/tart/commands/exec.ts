// tart exec NAME CMD...: runs a command in the running guest (tart talks to
// the guest agent; the sim spawns it in the guest's home and environment) and
// exits with its exit code. -i forwards stdin. When the VM powers off, the
// command is frozen with the rest of the guest and this waits until it is
// killed (dead_peer_ms).
import { spawn } from "node:child_process";
import { parseArgs, positional, type CommandSpec } from "../args.ts";
import { vmNotRunning } from "../errors.ts";
import { openLocalVM } from "../home.ts";
import { runState } from "../running.ts";
import { loadSettings } from "../settings.ts";
import { guestEnv } from "../guest/env.ts";

export const spec: CommandSpec = {
  name: "exec",
  usage: "[-i] [-t] <name> <command> ...",
  args: ["<name>", "<command>..."],
  flags: { interactive: { kind: "bool", short: "i" }, tty: { kind: "bool", short: "t" } },
};

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(spec, argv);
  const name = positional(p, 0);
  const program = positional(p, 1);
  const programArgs = p.args.slice(2);
  const dir = openLocalVM(name);
  if (!runState(dir)?.booted) throw vmNotRunning(name);
  const env = guestEnv(dir, loadSettings());
  const child = spawn(program, programArgs, {
    cwd: env.HOME,
    env,
    detached: true,
    stdio: [p.bool.interactive ? "inherit" : "ignore", "inherit", "inherit"],
  });
  return await new Promise<number>((resolve) => {
    child.on("error", (err) => {
      process.stderr.write(`${err.message}\n`);
      resolve(127);
    });
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
