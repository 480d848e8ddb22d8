// What every doctor check returns, what it is given, and the deadline each
// check that calls out (a command, the network) runs under.
import type { Config } from "../../config/index.ts";
import type { CommandRunner } from "../../core/proc.ts";
import type { Tart } from "../../vm/tart.ts";

export type CheckStatus = "PASS" | "WARN" | "FAIL" | "SKIP";

export interface CheckResult {
  status: CheckStatus;
  check: string;
  found: string;
  /** What to do about it ("" when nothing). */
  fix: string;
}

export interface DoctorContext {
  /** Undefined when the config did not load (the config check says why). */
  config?: Config | undefined;
  /** The config file's path, loaded or not. */
  configPath: string;
  /** Undefined when the config did not load or its registry password is unreadable. */
  tart?: Tart | undefined;
  platform: NodeJS.Platform;
  uid: number;
  env: NodeJS.ProcessEnv;
  run: CommandRunner;
  /** The macos-runner binary that runs (links resolved); undefined when run from source. */
  binaryPath?: string | undefined;
  /** The host id (host.id, the pinned one, or the one a first launch pins): the host part of runner and VM names. */
  host: string;
  /** Per check that calls out. */
  timeoutMs: number;
}

export type Check = (ctx: DoctorContext) => Promise<CheckResult[]>;

export const pass = (check: string, found: string, fix = ""): CheckResult => ({ status: "PASS", check, found, fix });
export const warn = (check: string, found: string, fix: string): CheckResult => ({ status: "WARN", check, found, fix });
export const fail = (check: string, found: string, fix: string): CheckResult => ({ status: "FAIL", check, found, fix });
export const skip = (check: string, found: string): CheckResult => ({ status: "SKIP", check, found, fix: "" });

/** launchd, the Aqua session, vmnet's DHCP and the Local Network permission exist on macOS only. */
export const macosOnly = (check: string): CheckResult => skip(check, "macOS only");

/** A check's names, all SKIP, when what it needs (the config) is missing. */
export const skipAll = (checks: string[], why: string): CheckResult[] => checks.map((c) => skip(c, why));

export class CheckTimeout extends Error {}

/** Runs `fn` with a deadline; a check that outlives it becomes a FAIL naming the timeout. */
export async function withDeadline<T>(ms: number, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new CheckTimeout(`${what} did not answer within ${Math.round(ms / 1000)} s`));
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function formatResult(r: CheckResult): string {
  return `${r.status} ${r.check}: ${r.found}${r.fix ? `; ${r.fix}` : ""}`;
}
