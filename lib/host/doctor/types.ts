import type { Config } from "../../config/index.ts";
import type { CommandRunner } from "../../core/proc.ts";
import type { Tart } from "../../vm/tart.ts";

export type CheckStatus = "PASS" | "WARN" | "FAIL" | "SKIP";

export interface CheckResult {
  status: CheckStatus;
  check: string;
  found: string;
  /** "" when nothing. */
  fix: string;
}

export interface DoctorContext {
  /** Undefined when the config did not load. */
  config?: Config | undefined;
  configPath: string;
  /** Undefined when the config did not load or its registry password is unreadable. */
  tart?: Tart | undefined;
  platform: NodeJS.Platform;
  uid: number;
  env: NodeJS.ProcessEnv;
  run: CommandRunner;
  /** Links resolved; undefined when run from source. */
  binaryPath?: string | undefined;
  /** The host part of runner and VM names. */
  host: string;
  /** Per check that calls out. */
  timeoutMs: number;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult[]>;

export const pass = (check: string, found: string, fix = ""): CheckResult => ({ status: "PASS", check, found, fix });
export const warn = (check: string, found: string, fix: string): CheckResult => ({ status: "WARN", check, found, fix });
export const fail = (check: string, found: string, fix: string): CheckResult => ({ status: "FAIL", check, found, fix });
export const skip = (check: string, found: string): CheckResult => ({ status: "SKIP", check, found, fix: "" });

export const macosOnly = (check: string): CheckResult => skip(check, "macOS only");

export const skipAll = (checks: string[], why: string): CheckResult[] => checks.map((c) => skip(c, why));

/** `fn` must stop at `signal`, as fetch does. */
export async function withDeadline<T>(ms: number, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  try {
    return await fn(signal);
  } catch (err) {
    throw signal.aborted ? new Error(`${what} did not answer within ${Math.round(ms / 1000)} s`) : err;
  }
}

export function formatResult(r: CheckResult): string {
  return `${r.status} ${r.check}: ${r.found}${r.fix ? `; ${r.fix}` : ""}`;
}
