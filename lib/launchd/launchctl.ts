// launchctl for agents in the user's GUI domain (gui/<uid>), as
// contracts/tart.md §8 describes it: bootout returns before the job has
// exited, so callers poll `launchctl print` until the label is gone.
import { MacosRunnerError } from "../errors.ts";
import { runArgv, type CommandRunner } from "../proc.ts";

/** launchctl answers at once; a hung one is killed after this. */
const LAUNCHCTL_TIMEOUT_MS = 30_000;

/** install's runner: launchctl (and cleanup, with its own deadline) through zx. */
export const runLaunchctl: CommandRunner = runArgv(LAUNCHCTL_TIMEOUT_MS);

/** launchctl refused to load or unload an agent. */
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

const guiDomain = (uid: number): string => `gui/${uid}`;
const serviceTarget = (uid: number, label: string): string => `${guiDomain(uid)}/${label}`;

export const printDomainArgv = (uid: number): string[] => ["launchctl", "print", guiDomain(uid)];
export const printServiceArgv = (uid: number, label: string): string[] => ["launchctl", "print", serviceTarget(uid, label)];
export const bootoutArgv = (uid: number, label: string): string[] => ["launchctl", "bootout", serviceTarget(uid, label)];
export const enableArgv = (uid: number, label: string): string[] => ["launchctl", "enable", serviceTarget(uid, label)];
export const bootstrapArgv = (uid: number, plistPath: string): string[] => ["launchctl", "bootstrap", guiDomain(uid), plistPath];

async function isLoaded(run: CommandRunner, uid: number, label: string): Promise<boolean> {
  return (await run(printServiceArgv(uid, label))).code === 0;
}

/** Boots an agent out if it is loaded; does not wait for its process to end. */
export async function bootout(run: CommandRunner, uid: number, label: string): Promise<boolean> {
  if (!(await isLoaded(run, uid, label))) return false;
  const r = await run(bootoutArgv(uid, label));
  // The job can finish between print and bootout ("No such process"): then it is gone, as wanted.
  if (r.code !== 0 && (await isLoaded(run, uid, label))) {
    throw new LaunchctlError(`launchctl bootout ${serviceTarget(uid, label)} failed: ${r.stderr || `exit ${r.code}`}`);
  }
  return true;
}

/** Polls `launchctl print` until the label is gone, backing off from 100 ms to 5 s. */
export async function waitUntilGone(run: CommandRunner, uid: number, label: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (await isLoaded(run, uid, label)) {
    if (Date.now() >= deadline) {
      throw new DrainTimeoutError(
        `${serviceTarget(uid, label)} is still loaded ${Math.round(timeoutMs / 1000)} s after bootout: ` +
          `check 'launchctl print ${serviceTarget(uid, label)}' and its log, then run install --remove again`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    delay = Math.min(delay * 2, 5_000);
  }
}

export async function bootstrap(run: CommandRunner, uid: number, label: string, plistPath: string): Promise<void> {
  // A disabled label (launchctl disable) cannot be bootstrapped; enabling is idempotent.
  await run(enableArgv(uid, label));
  const r = await run(bootstrapArgv(uid, plistPath));
  if (r.code !== 0) {
    throw new LaunchctlError(`launchctl bootstrap ${guiDomain(uid)} ${plistPath} failed: ${r.stderr || `exit ${r.code}`}; see 'launchctl print ${serviceTarget(uid, label)}'`);
  }
}
