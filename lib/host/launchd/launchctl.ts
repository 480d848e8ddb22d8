// The launchd labels of this project's jobs, and launchctl for them. bootout
// returns before the job has exited, so callers poll until the label is gone.
import { MacosRunnerError } from "../../core/errors.ts";
import { runArgv, type CommandRunner } from "../../core/proc.ts";

const LABEL_PREFIX = "dev.macos-runner";
export const PULL_LABEL = `${LABEL_PREFIX}.pull`;
export const DAEMONS_DIR = "/Library/LaunchDaemons";
/** Never in LaunchAgents: booted out by the command that loaded it. */
export const SELFTEST_LABEL = `${LABEL_PREFIX}.selftest`;
/** Apple's licence allows two macOS VMs per host. */
export const MAX_SLOTS = 2;

export const slotLabel = (slot: number): string => `${LABEL_PREFIX}.slot.${slot}`;

/** Pull was an agent before it became a daemon: an uninstall finds it too. */
export const allLabels = (): string[] => [...Array.from({ length: MAX_SLOTS }, (_, i) => slotLabel(i + 1)), PULL_LABEL];

/** launchctl answers at once; a hung one is killed after this. */
const LAUNCHCTL_TIMEOUT_MS = 30_000;

export const runLaunchctl: CommandRunner = runArgv(LAUNCHCTL_TIMEOUT_MS);

export class LaunchctlError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "failure" });
  }
}

export class DrainTimeoutError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "tempfail" });
  }
}

/** A uid is that user's GUI session; "system" is changed only as root. */
export type Domain = number | "system";

const domainName = (d: Domain): string => (d === "system" ? "system" : `gui/${d}`);
const serviceTarget = (d: Domain, label: string): string => `${domainName(d)}/${label}`;
/** Fails at once instead of prompting: install runs where nobody may answer. */
export const SUDO = ["sudo", "-n"];
const asRoot = (d: Domain, argv: string[]): string[] => (d === "system" ? [...SUDO, ...argv] : argv);

export const printDomainArgv = (uid: number): string[] => ["launchctl", "print", domainName(uid)];
/** No root needed, in either domain. */
export const printServiceArgv = (d: Domain, label: string): string[] => ["launchctl", "print", serviceTarget(d, label)];
export const bootoutArgv = (d: Domain, label: string): string[] => asRoot(d, ["launchctl", "bootout", serviceTarget(d, label)]);
export const enableArgv = (d: Domain, label: string): string[] => asRoot(d, ["launchctl", "enable", serviceTarget(d, label)]);
export const bootstrapArgv = (d: Domain, plistPath: string): string[] => asRoot(d, ["launchctl", "bootstrap", domainName(d), plistPath]);

export async function isLoaded(run: CommandRunner, d: Domain, label: string): Promise<boolean> {
  return (await run(printServiceArgv(d, label))).code === 0;
}

/** Does not wait for its process to end. */
export async function bootout(run: CommandRunner, d: Domain, label: string): Promise<boolean> {
  if (!(await isLoaded(run, d, label))) return false;
  const r = await run(bootoutArgv(d, label));
  // The job can finish between print and bootout ("No such process"): then it is gone, as wanted.
  if (r.code !== 0 && (await isLoaded(run, d, label))) {
    throw new LaunchctlError(`launchctl bootout ${serviceTarget(d, label)} failed: ${r.stderr || `exit ${r.code}`}`);
  }
  return true;
}

export async function waitUntilGone(run: CommandRunner, d: Domain, label: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (await isLoaded(run, d, label)) {
    if (Date.now() >= deadline) {
      throw new DrainTimeoutError(
        `${serviceTarget(d, label)} is still loaded ${Math.round(timeoutMs / 1000)} s after bootout: ` +
          `check 'launchctl print ${serviceTarget(d, label)}' and its log, then run install --remove again`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 5_000);
  }
}

export async function bootstrap(run: CommandRunner, d: Domain, label: string, plistPath: string): Promise<void> {
  // A disabled label (launchctl disable) cannot be bootstrapped; enabling is idempotent.
  await run(enableArgv(d, label));
  const r = await run(bootstrapArgv(d, plistPath));
  if (r.code !== 0) {
    throw new LaunchctlError(`launchctl bootstrap ${domainName(d)} ${plistPath} failed: ${r.stderr || `exit ${r.code}`}; see 'launchctl print ${serviceTarget(d, label)}'`);
  }
}
