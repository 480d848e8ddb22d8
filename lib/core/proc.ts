// The process layer: every external command (tart, ssh, launchctl,
// defaults, the registry's garbage collector) runs through zx's `$`, with a
// deadline, never throwing on a non-zero exit (callers read the code), and
// through /bin/sh with the user's shell start-up files kept out: no .bashrc,
// $BASH_ENV or $ENV can print a greeting into output we parse. Arguments are
// quoted for POSIX sh (zx's own quote emits bash's $'...', which dash,
// Debian's /bin/sh, rejects).
import { $ as zx, type ProcessPromise } from "zx/core";

/** One argument as POSIX sh reads it back verbatim. */
export function quote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The environment a command sees: ours, minus what makes a shell run start-up files. */
function commandEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.BASH_ENV;
  delete env.ENV;
  return env;
}

export interface RunOptions {
  /** Kill the command after this long; omit only for a process that outlives us (a VM). */
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
  input?: string;
  signal?: AbortSignal;
}

/** `$` for one command: quiet, nothrow, a deadline, a clean /bin/sh. */
export function sh(o: RunOptions) {
  return zx({
    shell: "/bin/sh",
    quote,
    prefix: "",
    postfix: "",
    quiet: true,
    nothrow: true,
    ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
    env: commandEnv(o.env),
    input: o.input ?? "",
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
  /** Killed by its deadline. */
  timedOut: boolean;
}

/** Awaits a command started with `sh(...)`; 127 when the program is missing. */
export async function finished(p: ProcessPromise): Promise<Finished> {
  const out = await p;
  const timedOut = out.signal !== null && out.exitCode === null;
  return { code: out.exitCode ?? (timedOut ? 124 : 1), stdout: out.stdout, stderr: out.stderr.trim(), timedOut };
}

/** Runs one command given as argv, with a deadline; install and doctor take it as a parameter. */
export type CommandRunner = (argv: string[], timeoutMs?: number) => Promise<Finished>;

/** The CommandRunner that runs through `sh`: `timeoutMs` unless a call names its own. */
export function runArgv(defaultTimeoutMs: number): CommandRunner {
  return (argv, timeoutMs = defaultTimeoutMs) => finished(sh({ timeoutMs })`${argv}`);
}
