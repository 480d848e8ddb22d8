// Every external command runs through zx's `$` with a deadline, never throwing
// (callers read the code), in /bin/sh without start-up files ($BASH_ENV, $ENV),
// which could print a greeting into output we parse. Arguments are quoted for
// POSIX sh: zx's own quote emits bash's $'...', which dash rejects.
import { $ as zx, type ProcessPromise } from "zx/core";

export function quote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

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
  timedOut: boolean;
}

/** 127 when the program is missing. */
export async function finished(p: ProcessPromise): Promise<Finished> {
  const out = await p;
  const timedOut = out.signal !== null && out.exitCode === null;
  return { code: out.exitCode ?? (timedOut ? 124 : 1), stdout: out.stdout, stderr: out.stderr.trim(), timedOut };
}

export type CommandRunner = (argv: string[], timeoutMs?: number) => Promise<Finished>;

export function runArgv(defaultTimeoutMs: number): CommandRunner {
  return (argv, timeoutMs = defaultTimeoutMs) => finished(sh({ timeoutMs })`${argv}`);
}
