// Runs the selftest where the slots run: a one-shot launchd agent in the GUI
// session, whose table this relays as it grows. A stop boots the agent out, and
// launchd's SIGTERM makes it remove its VMs first.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import { MacosRunnerError } from "../core/errors.ts";
import { FileLock } from "../core/flock.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { checkGuiSession } from "./launchd/install.ts";
import { bootout, bootstrap, printServiceArgv, SELFTEST_LABEL, waitUntilGone } from "./launchd/launchctl.ts";
import { renderSelftestAgent } from "./launchd/render.ts";
import type { CommandRunner } from "../core/proc.ts";
import { sleep } from "../core/wait.ts";

/** Never in LaunchAgents. */
export function selftestFiles(config: Config) {
  const dir = join(config.host.stateDir, "selftest");
  const file = (name: string) => join(dir, name);
  return { dir, plist: file(`${SELFTEST_LABEL}.plist`), out: file("selftest.out"), exit: file("selftest.exit"), log: join(config.host.logDir, "selftest.log") };
}

export function recordExit(config: Config, code: number): void {
  writeFileAtomic(selftestFiles(config).exit, `${code}\n`, 0o600);
}

export interface AgentRunOptions {
  config: Config;
  uid: number;
  /** Absolute. */
  program: string;
  args: string[];
  reportPath: string;
  launchctl: CommandRunner;
  write(text: string): void;
  signal: AbortSignal;
  deadlineMs: number;
}

/** exited: the agent recorded its result; died: launchd saw it end without one (killed, crashed). */
export type AgentOutcome = { kind: "exited"; code: number } | { kind: "died"; code: number } | { kind: "timeout" } | { kind: "stopped" };

/** launchd/selftest.plist's ExitTimeOut plus time to reap. */
const BOOTOUT_WAIT_MS = 150_000;
const POLL_MS = 200;
const LAUNCHD_POLL_MS = 1_000;

/** Returns the new offset. */
function relay(path: string, offset: number, write: (text: string) => void): number {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return offset;
  }
  if (bytes.length > offset) write(bytes.subarray(offset).toString("utf8"));
  return Math.max(offset, bytes.length);
}

/** Its own record, else what launchd says of a job that ended without one. */
async function ended(o: AgentRunOptions, exitFile: string, askLaunchd: boolean): Promise<AgentOutcome | undefined> {
  const recorded = () => (existsSync(exitFile) ? { kind: "exited" as const, code: Number(readFileSync(exitFile, "utf8").trim()) } : undefined);
  const own = recorded();
  if (own || !askLaunchd) return own;
  const r = await o.launchctl(printServiceArgv(o.uid, SELFTEST_LABEL));
  // Its record may have come while launchctl answered.
  if (r.code !== 0) return recorded() ?? { kind: "died", code: -1 };
  const last = /last exit code = (\d+)/.exec(r.stdout)?.[1];
  if (!/state = not running/.test(r.stdout) || last === undefined) return undefined;
  return recorded() ?? { kind: "died", code: Number(last) };
}

export async function runInAgent(o: AgentRunOptions): Promise<AgentOutcome> {
  const files = selftestFiles(o.config);
  await checkGuiSession(o.launchctl, o.uid);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  const lockPath = join(files.dir, "selftest.lock");
  const lock = FileLock.tryAcquire(lockPath);
  if (!lock) {
    const pid = FileLock.holderPid(lockPath);
    throw new MacosRunnerError(`another selftest is running${pid ? ` (pid ${pid})` : ""}; wait for it to end`, { kind: "tempfail" });
  }
  try {
    return await loadAndWait(o, files);
  } finally {
    lock.release();
  }
}

async function loadAndWait(o: AgentRunOptions, files: ReturnType<typeof selftestFiles>): Promise<AgentOutcome> {
  mkdirSync(o.config.host.logDir, { recursive: true });
  // A killed command's agent is still loaded: it goes first.
  if (await bootout(o.launchctl, o.uid, SELFTEST_LABEL)) await waitUntilGone(o.launchctl, o.uid, SELFTEST_LABEL, BOOTOUT_WAIT_MS);
  for (const f of [files.out, files.exit]) rmSync(f, { force: true });
  const agent = renderSelftestAgent({
    program: o.program, configPath: o.config.file, stateDir: o.config.host.stateDir, reportPath: o.reportPath, outPath: files.out, logPath: files.log, args: o.args,
  });
  writeFileAtomic(files.plist, agent.xml, 0o644);
  let offset = 0;
  let outcome: AgentOutcome = { kind: "timeout" };
  try {
    await bootstrap(o.launchctl, o.uid, SELFTEST_LABEL, files.plist);
    const deadline = Date.now() + o.deadlineMs;
    // The agent's exit record is read every poll; launchd is asked (an agent that died without one) once a second.
    let askedAt = 0;
    for (;;) {
      offset = relay(files.out, offset, o.write);
      const ask = Date.now() - askedAt >= LAUNCHD_POLL_MS;
      if (ask) askedAt = Date.now();
      const end = await ended(o, files.exit, ask);
      if (end) {
        outcome = end;
        break;
      }
      if (o.signal.aborted) {
        outcome = { kind: "stopped" };
        break;
      }
      if (Date.now() > deadline) break;
      await sleep(POLL_MS, o.signal);
    }
  } finally {
    if (await bootout(o.launchctl, o.uid, SELFTEST_LABEL)) await waitUntilGone(o.launchctl, o.uid, SELFTEST_LABEL, BOOTOUT_WAIT_MS);
    relay(files.out, offset, o.write);
    rmSync(files.plist, { force: true });
  }
  return outcome;
}
