// The one exit-code table: every error a user can act on has a kind, mapped to
// its exit code here only; sysexits.h where one fits, 80+ for a run's outcomes.

export const EXIT_TABLE = {
  ok: { code: 0, meaning: "success" },
  failure: { code: 1, meaning: "failed; the last log line says what and where" },
  usage: { code: 64, meaning: "bad flags or arguments" },
  "bad-input": { code: 65, meaning: "GitHub, tart or the guest answered something unexpected" },
  unavailable: { code: 69, meaning: "something it needs is missing (tart, macOS, a GUI session, a binary)" },
  "state-io": { code: 74, meaning: "the state directory cannot be read or written (permissions, full disk)" },
  tempfail: { code: 75, meaning: "try again later (slot busy, GitHub or registry unavailable, rate limited)" },
  "local-network": { code: 77, meaning: "macOS Local Network privacy refused a connection to the guest (use vm.transport: exec, or grant it)" },
  config: { code: 78, meaning: "the config file, a secret file or the credentials are wrong" },
  "job-failed": { code: 80, meaning: "the job ran and did not succeed" },
  "no-job": { code: 81, meaning: "the runner ended without running a job" },
  lost: { code: 82, meaning: "the VM, the session to the guest (tart exec or SSH) or the runner died while the job ran" },
  timeout: { code: 83, meaning: "a deadline passed (job_timeout, listen_timeout, exit_timeout)" },
  "host-key": { code: 84, meaning: "the guest's host key does not match vm.ssh.known_hosts_path" },
  stopped: { code: 85, meaning: "stopped by a signal before a job started" },
} as const;

export type ExitKind = keyof typeof EXIT_TABLE;

export const exitCode = (kind: ExitKind): number => EXIT_TABLE[kind].code;

/** Base of every error a user can act on: what failed, where, what to do, and its kind. */
export class MacosRunnerError extends Error {
  readonly kind: ExitKind;
  constructor(message: string, options: { kind?: ExitKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.kind = options.kind ?? "failure";
  }
  get exitCode(): number {
    return exitCode(this.kind);
  }
}

export class UsageError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "usage" });
  }
}

/** Something outside (GitHub, tart, the guest) answered what it should not have. */
export class BadInputError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "bad-input" });
  }
}

/** The state directory cannot be read or written. */
export class StateIoError extends MacosRunnerError {
  constructor(message: string, cause?: unknown) {
    super(message, { kind: "state-io", cause });
  }
}

/** macOS Local Network privacy refused our connection to a guest (EHOSTUNREACH, "No route to host"). */
export class LocalNetworkError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "local-network" });
  }
}

/** A short, single-line excerpt of an outside answer (an HTML error page, a huge body). */
export function excerpt(text: string, max = 200): string {
  const flat = text.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}… (${text.length} bytes)` : flat;
}
