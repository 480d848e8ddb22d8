// The launchd labels of this project's jobs (one agent per VM slot, the
// image-pull daemon, the selftest's agent), and launchctl for the agents in
// the user's GUI domain (gui/<uid>) and the pull daemon in the system domain:
// bootout returns before the job has exited, so callers poll `launchctl print`
// until the label is gone.
import { MacosRunnerError } from "../../core/errors.ts";
import { runArgv, type CommandRunner } from "../../core/proc.ts";

const LABEL_PREFIX = "dev.macos-runner";
export const PULL_LABEL = `${LABEL_PREFIX}.pull`;
export const DAEMONS_DIR = "/Library/LaunchDaemons";
/** The selftest's one-shot agent (never in LaunchAgents; booted out by the command that loaded it). */
export const SELFTEST_LABEL = `${LABEL_PREFIX}.selftest`;
/** Apple's licence allows two macOS VMs per host. */
export const MAX_SLOTS = 2;

export const slotLabel = (slot: number): string => `${LABEL_PREFIX}.slot.${slot}`;

/** Every label `install` may have loaded in the GUI session (pull was an agent before it became a daemon), so an uninstall finds them all. */
export const allLabels = (): string[] => [...Array.from({ length: MAX_SLOTS }, (_, i) => slotLabel(i + 1)), PULL_LABEL];

/** launchctl answers at once; a hung one is killed after this. */
const LAUNCHCTL_TIMEOUT_MS = 30_000;

/** install's runner: launchctl (and cleanup, with its own deadline) through zx. */
export const runLaunchctl: CommandRunner = runArgv(LAUNCHCTL_TIMEOUT_MS);

export class LaunchctlError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "failure" });
  }
}

/** An agent was still loaded when its drain deadline passed. */
export class DrainTimeoutError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "tempfail" });
  }
}

/**
 * Where a job is loaded: a uid is that user's GUI session (gui/<uid>: the
 * slot agents); "system" is the system domain (the pull daemon), changed
 * only as root: through `sudo -n`, which never prompts (install runs where
 * nobody may answer).
 */
export type Domain = number | "system";

const domainName = (d: Domain): string => (d === "system" ? "system" : `gui/${d}`);
const serviceTarget = (d: Domain, label: string): string => `${domainName(d)}/${label}`;
/** sudo -n: fails at once instead of asking for a password. */
export const SUDO = ["sudo", "-n"];
const asRoot = (d: Domain, argv: string[]): string[] => (d === "system" ? [...SUDO, ...argv] : argv);

export const printDomainArgv = (uid: number): string[] => ["launchctl", "print", domainName(uid)];
/** Reading needs no root, in either domain. */
export const printServiceArgv = (d: Domain, label: string): string[] => ["launchctl", "print", serviceTarget(d, label)];
export const bootoutArgv = (d: Domain, label: string): string[] => asRoot(d, ["launchctl", "bootout", serviceTarget(d, label)]);
export const enableArgv = (d: Domain, label: string): string[] => asRoot(d, ["launchctl", "enable", serviceTarget(d, label)]);
export const bootstrapArgv = (d: Domain, plistPath: string): string[] => asRoot(d, ["launchctl", "bootstrap", domainName(d), plistPath]);

export async function isLoaded(run: CommandRunner, d: Domain, label: string): Promise<boolean> {
  return (await run(printServiceArgv(d, label))).code === 0;
}

/** Boots a job out if it is loaded; does not wait for its process to end. */
export async function bootout(run: CommandRunner, d: Domain, label: string): Promise<boolean> {
  if (!(await isLoaded(run, d, label))) return false;
  const r = await run(bootoutArgv(d, label));
  // The job can finish between print and bootout ("No such process"): then it is gone, as wanted.
  if (r.code !== 0 && (await isLoaded(run, d, label))) {
    throw new LaunchctlError(`launchctl bootout ${serviceTarget(d, label)} failed: ${r.stderr || `exit ${r.code}`}`);
  }
  return true;
}

/** Polls `launchctl print` until the label is gone, backing off from 100 ms to 5 s. */
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
