// What `install` does to a host, as a list of steps: printed by --dry-run,
// executed otherwise. Only execution touches the disk or runs launchctl.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../fs.ts";
import { quote, type CommandRunner } from "../proc.ts";
import { bootout, bootoutArgv, bootstrap, bootstrapArgv, enableArgv, printServiceArgv, waitUntilGone } from "./launchctl.ts";
import { readAgentPlist } from "./plist.ts";

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
  | { kind: "start"; label: string; plistPath: string };

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
  }
}

function deadlineS(a: StopTarget): number {
  let exitTimeOut = a.fallbackExitTimeOutS;
  try {
    exitTimeOut = readAgentPlist(readFileSync(a.plistPath, "utf8"), a.plistPath).ExitTimeOut || exitTimeOut; // 0 (wait forever) gets the configured bound
  } catch {
    // No readable plist on disk: launchd holds what it loaded; assume the configured value.
  }
  return exitTimeOut + STOP_GRACE_S;
}
