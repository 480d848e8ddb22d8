// tart exec [-i] [-t] NAME CMD...: runs a command in the running guest
// through the VM's control socket and the tart guest agent (Exec.swift,
// tart-guest-agent's Exec RPC; sim/PROTOCOL.md). The sim spawns CMD (no
// shell) in the guest's home and environment, marked as a guest process, and
// exits with its exit code (255 when a signal ended it: the agent reports -1).
// -i streams stdin; without it the command's stdin is closed.
//
// - A VM that is not running: `VM "NAME" is not running`, exit 2.
// - Before the guest agent answers, tart's gRPC pool retries the connection
//   (after 1 s, then x1.6) for exec_connect_timeout_ms, then fails with
//   `Failed to connect to the VM using its control socket: …, is the Tart
//   Guest Agent running?`, exit 1. An agent that comes up meanwhile is found
//   at the next retry.
// - The VM's `tart run` ending (stop, kill, crash) closes the control socket:
//   the client prints a gRPC error and exits 1 at once; the command is
//   frozen and killed with the rest of the guest.
// - Harsher reading of a killed or dropped client: the command keeps running
//   (the agent kills only its direct child; what that started lives on).
import { spawn } from "node:child_process";
import { parseArgs, positional, type CommandSpec } from "../args.ts";
import { RuntimeError, vmNotRunning } from "../errors.ts";
import { openLocalVM, sleep } from "../home.ts";
import { runState } from "../running.ts";
import { loadSettings } from "../settings.ts";
import { guestEnv } from "../guest/env.ts";
import { trace } from "../trace.ts";
import { AGENT_UNREACHABLE, CONTROL_SOCKET_CLOSED } from "../messages.ts";

export const spec: CommandSpec = {
  name: "exec",
  usage: "[-i] [-t] <name> <command> ...",
  args: ["<name>", "<command>..."],
  flags: { interactive: { kind: "bool", short: "i" }, tty: { kind: "bool", short: "t" } },
};


/** grpc-swift's default reconnect backoff: 1 s, then x1.6 (jitter left out). */
function* reconnects(): Generator<number> {
  let at = 0;
  let backoff = 1000;
  for (;;) {
    at += backoff;
    yield at;
    backoff *= 1.6;
  }
}

/** Waits for the agent as tart's connection pool does; false when it never answered in time. */
async function connect(dir: string, timeoutMs: number): Promise<boolean> {
  const start = Date.now();
  if (runState(dir)?.agent) return true;
  for (const at of reconnects()) {
    if (at >= timeoutMs) break;
    await sleep(start + at - Date.now());
    if (runState(dir)?.agent) return true;
  }
  await sleep(start + timeoutMs - Date.now());
  return false;
}

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(spec, argv);
  const name = positional(p, 0);
  const program = positional(p, 1);
  const programArgs = p.args.slice(2);
  const dir = openLocalVM(name);
  if (!runState(dir)) throw vmNotRunning(name);
  const settings = loadSettings();
  if (!(await connect(dir, settings.exec_connect_timeout_ms))) throw new RuntimeError(AGENT_UNREACHABLE, 1);
  const runner = runState(dir);
  if (!runner) throw new RuntimeError(AGENT_UNREACHABLE, 1);
  // `sh -c CMD` is traced as CMD, as sshd's exec requests are.
  const shell = /(^|\/)sh$/.test(program) && programArgs[0] === "-c";
  trace({ kind: "guest", vm: dir, event: "tart-exec", command: (shell ? programArgs.slice(1).join(" ") : [program, ...programArgs].join(" ")).slice(0, 80) });
  const child = spawn(program, programArgs, {
    cwd: guestEnv(dir, settings).HOME,
    env: guestEnv(dir, settings),
    detached: true,
    stdio: [p.bool.interactive ? "pipe" : "ignore", "pipe", "pipe"],
  });
  if (child.stdin) {
    child.stdin.on("error", () => {});
    process.stdin.pipe(child.stdin);
  }
  child.stdout!.pipe(process.stdout);
  child.stderr!.pipe(process.stderr);
  let watch: ReturnType<typeof setInterval> | undefined;
  const code = await new Promise<number>((resolve) => {
    child.on("error", (err) => {
      process.stderr.write(`${err.message}\n`);
      resolve(1);
    });
    child.on("close", (c) => resolve(c ?? 255));
    // The control socket lives as long as the VM's `tart run`.
    watch = setInterval(() => {
      if (runState(dir)?.pid === runner.pid) return;
      process.stderr.write(`${CONTROL_SOCKET_CLOSED}\n`);
      resolve(1);
    }, 100);
  });
  clearInterval(watch);
  // The client is done; whatever still runs in the guest is left to it.
  process.stdin.unpipe();
  process.stdin.destroy();
  for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
  child.unref();
  return code;
}
