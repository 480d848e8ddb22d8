// What `install` does to a host, as a list of steps: printed by --dry-run,
// executed otherwise. Only execution touches the disk or runs launchctl.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MacosRunnerError } from "../../core/errors.ts";
import { writeFileAtomic } from "../../core/fs.ts";
import { quote, type CommandRunner } from "../../core/proc.ts";
import { bootout, bootoutArgv, bootstrap, bootstrapArgv, enableArgv, isLoaded, printServiceArgv, SUDO, waitUntilGone } from "./launchctl.ts";
import { readAgentPlist } from "./plist.ts";

/** The pull daemon must change and this user cannot become root without a password. */
export class NeedsRootError extends MacosRunnerError {
  constructor(plistPath: string, detail: string) {
    super(
      `loading the pull daemon (${plistPath}, system domain) needs root, and 'sudo -n true' failed (${detail}): run 'sudo -v' in this terminal first, then install again ` +
        "(the Ansible playbook installs the daemon with become before it runs install)",
      { kind: "unavailable" },
    );
  }
}

/** A loaded agent to stop: bootout (launchd SIGTERMs it), then wait until launchd lists it no more. */
export interface StopTarget {
  label: string;
  /** The plist it was loaded from; its ExitTimeOut bounds the wait. */
  plistPath: string;
  /** ExitTimeOut to assume when that plist is gone or unreadable. */
  fallbackExitTimeOutS: number;
}

export type Step =
  | { kind: "mkdir"; path: string }
  | { kind: "stop"; agents: StopTarget[] }
  | { kind: "run"; argv: string[]; why: string; timeoutMs: number }
  | { kind: "write"; path: string; content: string }
  | { kind: "remove"; path: string }
  | { kind: "start"; label: string; plistPath: string }
  /** The pull daemon: replaced (as root) unless the installed plist is this one and it is loaded. */
  | { kind: "daemon"; label: string; plistPath: string; content: string; fallbackExitTimeOutS: number }
  /** The pull daemon removed (as root) if it is there; without root, a warning that says how. */
  | { kind: "daemon-remove"; label: string; plistPath: string; fallbackExitTimeOutS: number };

/** launchd SIGKILLs at ExitTimeOut; the poll allows this much more for it to reap. */
const STOP_GRACE_S = 30;

const cmd = (argv: string[]): string => argv.map(quote).join(" ");

/** The step as shell lines, for --dry-run and for progress output. */
export function describeStep(step: Step, uid: number): string[] {
  switch (step.kind) {
    case "mkdir":
      return [cmd(["mkdir", "-p", step.path])];
    case "stop":
      return step.agents.flatMap((a) => [
        `${cmd(bootoutArgv(uid, a.label))}   # if loaded; launchd sends SIGTERM, a running job finishes first`,
        `${cmd(printServiceArgv(uid, a.label))}   # polled until it fails (gone), up to ${deadlineS(a)} s`,
      ]);
    case "run":
      return [`${cmd(step.argv)}   # ${step.why}`];
    case "write":
      return [`cat > ${quote(step.path)} <<'PLIST'`, step.content.trimEnd(), "PLIST"];
    case "remove":
      return [cmd(["rm", "-f", step.path])];
    case "start":
      return [cmd(enableArgv(uid, step.label)), cmd(bootstrapArgv(uid, step.plistPath))];
    case "daemon":
      return [
        `# the pull daemon, unless ${step.plistPath} is already this plist and loaded (as root: sudo -n; run sudo -v first):`,
        `${cmd(bootoutArgv("system", step.label))}   # if loaded`,
        `${cmd(printServiceArgv("system", step.label))}   # polled until it fails (gone), up to ${deadlineS(step)} s`,
        `staged=$(mktemp) && cat > "$staged" <<'PLIST'`,
        step.content.trimEnd(),
        "PLIST",
        `${cmd([...SUDO, "/usr/bin/install", "-m", "0644", "-o", "root", "-g", "wheel"])} "$staged" ${quote(step.plistPath)}`,
        cmd(enableArgv("system", step.label)),
        cmd(bootstrapArgv("system", step.plistPath)),
      ];
    case "daemon-remove":
      return [
        `# the pull daemon, if installed (as root: sudo -n):`,
        `${cmd(bootoutArgv("system", step.label))}   # if loaded`,
        `${cmd(printServiceArgv("system", step.label))}   # polled until it fails (gone), up to ${deadlineS(step)} s`,
        cmd([...SUDO, "rm", "-f", step.plistPath]),
      ];
  }
}

/** Whether `sudo -n` works here; the reason when it does not. */
async function sudoProblem(run: CommandRunner): Promise<string | undefined> {
  const r = await run([...SUDO, "true"]);
  return r.code === 0 ? undefined : r.stderr.split("\n")[0] || `exit ${r.code}`;
}

async function stopDaemon(run: CommandRunner, step: { label: string; plistPath: string; fallbackExitTimeOutS: number }, say: (line: string) => void): Promise<void> {
  if (!(await bootout(run, "system", step.label))) return;
  say(`${step.label}: booted out, waiting for it to exit (up to ${deadlineS(step)} s)`);
  await waitUntilGone(run, "system", step.label, deadlineS(step) * 1000);
}

/** Writes a root-owned 0644 plist: a temp file of ours, then `install` as root (launchd refuses a daemon plist others can write). */
async function writeAsRoot(run: CommandRunner, path: string, content: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "macos-runner-install-"));
  try {
    const staged = join(dir, "daemon.plist");
    writeFileSync(staged, content, { mode: 0o644 });
    const r = await run([...SUDO, "/usr/bin/install", "-m", "0644", "-o", "root", "-g", "wheel", staged, path]);
    if (r.code !== 0) throw new MacosRunnerError(`writing ${path} as root failed: ${r.stderr.trim() || `exit ${r.code}`}`, { kind: "failure" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function installed(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export async function executeStep(step: Step, uid: number, run: CommandRunner, say: (line: string) => void): Promise<void> {
  switch (step.kind) {
    case "mkdir":
      mkdirSync(step.path, { recursive: true });
      return;
    case "stop": {
      // Boot every agent out first, then wait for all: slots drain in parallel.
      const stopped = [];
      for (const a of step.agents) if (await bootout(run, uid, a.label)) stopped.push(a);
      for (const a of stopped) say(`${a.label}: booted out, waiting for it to exit (up to ${deadlineS(a)} s)`);
      await Promise.all(stopped.map((a) => waitUntilGone(run, uid, a.label, deadlineS(a) * 1000)));
      for (const a of stopped) say(`${a.label}: stopped`);
      return;
    }
    case "run": {
      say(`${step.why}: ${cmd(step.argv)}`);
      const r = await run(step.argv, step.timeoutMs);
      // A failed cleanup is reported, not fatal: the next start of the slot cleans up again.
      if (r.timedOut) say(`warning: ${step.argv[0]} was killed after ${step.timeoutMs / 1000} s: ${r.stderr}`);
      else if (r.code !== 0) say(`warning: ${step.argv[0]} exited ${r.code}: ${r.stderr}`);
      return;
    }
    case "write":
      writeFileAtomic(step.path, step.content, 0o644);
      say(`wrote ${step.path}`);
      return;
    case "remove":
      if (existsSync(step.path)) {
        rmSync(step.path, { force: true });
        say(`removed ${step.path}`);
      }
      return;
    case "start":
      await bootstrap(run, uid, step.label, step.plistPath);
      say(`${step.label}: loaded`);
      return;
    case "daemon": {
      if (installed(step.plistPath)?.trimEnd() === step.content.trimEnd() && (await isLoaded(run, "system", step.label))) {
        say(`${step.label}: the daemon in ${step.plistPath} is up to date and loaded`);
        return;
      }
      const problem = await sudoProblem(run);
      if (problem) throw new NeedsRootError(step.plistPath, problem);
      await stopDaemon(run, step, say);
      await writeAsRoot(run, step.plistPath, step.content);
      say(`wrote ${step.plistPath}`);
      await bootstrap(run, "system", step.label, step.plistPath);
      say(`${step.label}: loaded in the system domain`);
      return;
    }
    case "daemon-remove": {
      if (!existsSync(step.plistPath) && !(await isLoaded(run, "system", step.label))) return;
      const problem = await sudoProblem(run);
      if (problem) {
        say(`warning: the pull daemon stays loaded (removing it needs root: ${problem}); to remove it: sudo launchctl bootout system/${step.label}; sudo rm -f ${quote(step.plistPath)}`);
        return;
      }
      await stopDaemon(run, step, say);
      const r = await run([...SUDO, "rm", "-f", step.plistPath]);
      if (r.code !== 0) throw new MacosRunnerError(`removing ${step.plistPath} as root failed: ${r.stderr.trim() || `exit ${r.code}`}`, { kind: "failure" });
      say(`removed ${step.plistPath}`);
      return;
    }
  }
}

function deadlineS(a: Pick<StopTarget, "plistPath" | "fallbackExitTimeOutS">): number {
  let exitTimeOut = a.fallbackExitTimeOutS;
  try {
    exitTimeOut = readAgentPlist(readFileSync(a.plistPath, "utf8"), a.plistPath).ExitTimeOut || exitTimeOut; // 0 (wait forever) gets the configured bound
  } catch {
    // No readable plist on disk: launchd holds what it loaded; assume the configured value.
  }
  return exitTimeOut + STOP_GRACE_S;
}
