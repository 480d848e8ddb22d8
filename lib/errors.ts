// Base of every error a user can act on. Each carries the exit code its CLI
// returns, so `runCli` can turn any of them into the documented status.
export class MacosRunnerError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Exit codes shared by every script (sysexits.h where one fits). */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 64, // EX_USAGE: bad flags or arguments
  unavailable: 69, // EX_UNAVAILABLE: a dependency (tart, ssh, GitHub) is missing or refuses
  tempfail: 75, // EX_TEMPFAIL: try again later (rate limit, outage, slot busy)
  config: 78, // EX_CONFIG: the config file or a secret file is wrong
} as const;

export class UsageError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.usage });
  }
}
