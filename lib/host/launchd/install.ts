// What `install` does to a host: the launchd jobs' parameters, the plan that
// installs or drains and removes them as steps (printed by --dry-run; only
// execution touches the disk or runs launchctl), and the host checks before it.
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../config/index.ts";
import { MacosRunnerError } from "../../core/errors.ts";
import { writeFileAtomic } from "../../core/fs.ts";
import { quote, type CommandRunner } from "../../core/proc.ts";
import { TartMissingError } from "../../vm/tart.ts";
import { judgeTartVersion, MIN_TART_VERSION, TartVersionError } from "../../vm/tart-version.ts";
import {
  allLabels, bootout, bootoutArgv, bootstrap, bootstrapArgv, enableArgv, isLoaded, MAX_SLOTS, printDomainArgv, printServiceArgv, PULL_LABEL, SUDO, waitUntilGone,
} from "./launchctl.ts";
import { readAgentPlist } from "./plist.ts";
import { CLEANUP_MARGIN_S, slotExitTimeOut, type AgentParams, type RenderedAgent } from "./render.ts";

export interface InstallOptions {
  config: Config;
  binDir: string;
  agentsDir: string;
  daemonsDir: string;
  uid: number;
  /** This user: the agents and the pull daemon run as it. */
  user: { name: string; home: string };
}

export function agentParams(o: InstallOptions): AgentParams {
  const { host, runner } = o.config;
  if (host.slots > MAX_SLOTS) {
    throw new MacosRunnerError(`host.slots is ${host.slots} in ${o.config.file}: at most ${MAX_SLOTS} (Apple's licence allows two macOS VMs per host)`, { kind: "config" });
  }
  return {
    binDir: o.binDir,
    configPath: o.config.file,
    slots: host.slots,
    logDir: host.logDir,
    stateDir: host.stateDir,
    jobTimeoutMs: runner.jobTimeoutMs,
    pull: isExecutableFile(join(o.binDir, "pull")),
    pullIntervalS: Math.round(o.config.image.pullIntervalMs / 1000),
    user: o.user,
  };
}

function stopTargets(o: InstallOptions): StopTarget[] {
  const fallback = slotExitTimeOut(o.config.runner.jobTimeoutMs);
  return allLabels().map((label) => ({ label, plistPath: plistPath(o, label), fallbackExitTimeOutS: fallback }));
}

const plistPath = (o: InstallOptions, label: string): string => join(o.agentsDir, `${label}.plist`);
/** pull is short (60 s to exit); a cut-short pull leaves the pinned image in place. */
const pullDaemon = (o: InstallOptions): StopTarget => ({ label: PULL_LABEL, plistPath: join(o.daemonsDir, `${PULL_LABEL}.plist`), fallbackExitTimeOutS: 60 });

/** The pull daemon first, so a missing sudo changes nothing else. */
export function installPlan(o: InstallOptions, agents: RenderedAgent[]): Step[] {
  const gui = agents.filter((a) => a.domain === "gui");
  const daemon = agents.find((a) => a.domain === "system");
  const wanted = new Set(gui.map((a) => a.label));
  const pull = pullDaemon(o);
  return [
    ...[o.config.host.logDir, o.config.host.stateDir, o.agentsDir].map((path): Step => ({ kind: "mkdir", path })),
    daemon ? { kind: "daemon", ...pull, content: daemon.xml } : { kind: "daemon-remove", ...pull },
    { kind: "stop", agents: stopTargets(o) },
    ...allLabels().filter((l) => !wanted.has(l)).map((l): Step => ({ kind: "remove", path: plistPath(o, l) })),
    ...gui.map((a): Step => ({ kind: "write", path: plistPath(o, a.label), content: a.xml })),
    ...gui.map((a): Step => ({ kind: "start", label: a.label, plistPath: plistPath(o, a.label) })),
  ];
}

export function removePlan(o: InstallOptions): Step[] {
  const cleanup = join(o.binDir, "cleanup");
  const cleanups = isExecutableFile(cleanup)
    ? Array.from({ length: o.config.host.slots }, (_, i): Step => ({
        kind: "run",
        argv: [cleanup, "--slot", String(i + 1), "--config", o.config.file, "--golden"],
        why: `remove what slot ${i + 1} left behind, its golden VM included`,
        timeoutMs: CLEANUP_MARGIN_S * 1000,
      }))
    : [];
  return [
    { kind: "stop", agents: stopTargets(o) },
    ...cleanups,
    ...allLabels().map((l): Step => ({ kind: "remove", path: plistPath(o, l) })),
    { kind: "daemon-remove", ...pullDaemon(o) },
  ];
}

export function describePlan(o: InstallOptions, steps: Step[], remove: boolean): string[] {
  return [
    `# install${remove ? " --remove" : ""} --dry-run: nothing was changed. On the host it would:`,
    "# check: running on macOS",
    `# check: a GUI session for uid ${o.uid}: launchctl print gui/${o.uid}`,
    ...(remove ? [] : [`# check: tart at ${o.config.host.tartPath} (host.tart_path), version ${MIN_TART_VERSION} or later`, `# check: ${join(o.binDir, "loop")} exists`]),
    ...steps.flatMap((s) => describeStep(s, o.uid)),
  ];
}

export async function applyPlan(o: InstallOptions, steps: Step[], how: { remove: boolean; agentPath: string; run: CommandRunner; say: (line: string) => void }): Promise<void> {
  if (process.platform !== "darwin") throw new NotMacosError(process.platform);
  await checkGuiSession(how.run, o.uid);
  if (!how.remove) {
    await checkTartVersion(how.run, checkTart(o.config.host.tartPath, how.agentPath));
    if (!isExecutableFile(join(o.binDir, "loop"))) throw new BinaryMissingError("loop", o.binDir);
  }
  for (const step of steps) await executeStep(step, o.uid, how.run, how.say);
}

export class NeedsRootError extends MacosRunnerError {
  constructor(plistPath: string, detail: string) {
    super(
      `loading the pull daemon (${plistPath}, system domain) needs root, and 'sudo -n true' failed (${detail}): run 'sudo -v' in this terminal first, then install again ` +
        "(the Ansible playbook installs the daemon with become before it runs install)",
      { kind: "unavailable" },
    );
  }
}

export interface StopTarget {
  label: string;
  /** Its ExitTimeOut bounds the wait. */
  plistPath: string;
  /** When that plist is gone or unreadable. */
  fallbackExitTimeOutS: number;
}

export type Step =
  | { kind: "mkdir"; path: string }
  | { kind: "stop"; agents: StopTarget[] }
  | { kind: "run"; argv: string[]; why: string; timeoutMs: number }
  | { kind: "write"; path: string; content: string }
  | { kind: "remove"; path: string }
  | { kind: "start"; label: string; plistPath: string }
  /** Replaced (as root) unless the installed plist is this one and it is loaded. */
  | ({ kind: "daemon"; content: string } & StopTarget)
  /** Without root, a warning that says how. */
  | ({ kind: "daemon-remove" } & StopTarget);

/** launchd SIGKILLs at ExitTimeOut; the poll allows this much more for it to reap. */
const STOP_GRACE_S = 30;

const cmd = (argv: string[]): string => argv.map(quote).join(" ");

function describeStep(step: Step, uid: number): string[] {
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

/** Why `sudo -n` does not work here. */
async function sudoProblem(run: CommandRunner): Promise<string | undefined> {
  const r = await run([...SUDO, "true"]);
  return r.code === 0 ? undefined : r.stderr.split("\n")[0] || `exit ${r.code}`;
}

async function stopDaemon(run: CommandRunner, step: StopTarget, say: (line: string) => void): Promise<void> {
  if (!(await bootout(run, "system", step.label))) return;
  say(`${step.label}: booted out, waiting for it to exit (up to ${deadlineS(step)} s)`);
  await waitUntilGone(run, "system", step.label, deadlineS(step) * 1000);
}

/** launchd refuses a daemon plist others can write. */
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

export async function executeStep(step: Step, uid: number, run: CommandRunner, say: (line: string) => void): Promise<void> {
  switch (step.kind) {
    case "mkdir":
      mkdirSync(step.path, { recursive: true });
      return;
    case "stop": {
      // Slots drain in parallel.
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
      // Not fatal: the slot's next launch cleans up again.
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
      let installed: string | undefined;
      try {
        installed = readFileSync(step.plistPath, "utf8");
      } catch {
        // absent or unreadable: replaced
      }
      if (installed?.trimEnd() === step.content.trimEnd() && (await isLoaded(run, "system", step.label))) {
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

function deadlineS(a: StopTarget): number {
  let exitTimeOut = a.fallbackExitTimeOutS;
  try {
    exitTimeOut = readAgentPlist(readFileSync(a.plistPath, "utf8"), a.plistPath).ExitTimeOut || exitTimeOut; // 0 (wait forever) gets the configured bound
  } catch {
    // launchd holds what it loaded; assume the configured value.
  }
  return exitTimeOut + STOP_GRACE_S;
}

class NotMacosError extends MacosRunnerError {
  constructor(platform: string) {
    super(`install must run on the macOS host that serves the slots (this is ${platform}); use --dry-run to see what it would do`, { kind: "unavailable" });
  }
}

export class NoGuiSessionError extends MacosRunnerError {
  constructor(uid: number, detail: string) {
    super(
      `no GUI session for uid ${uid} ('launchctl print gui/${uid}' failed: ${detail}): VMs need the user's Aqua session. ` +
        `Enable automatic login for this user (System Settings > Users & Groups > Automatically log in as), log in once, then run install again`,
      { kind: "unavailable" },
    );
  }
}

class BinaryMissingError extends MacosRunnerError {
  constructor(name: string, binDir: string) {
    super(`${name} not found in ${binDir}: copy dist/darwin-arm64/macos-runner there and link ${name} to it (ansible/site.yml does), or pass --bin-dir`, { kind: "unavailable" });
  }
}

export async function checkGuiSession(run: CommandRunner, uid: number): Promise<void> {
  const r = await run(printDomainArgv(uid));
  if (r.code !== 0) throw new NoGuiSessionError(uid, r.stderr.split("\n")[0] || `exit ${r.code}`);
}

/** As the agents will: host.tart_path as a path, or a name in the agents' PATH. */
export function checkTart(tartPath: string, agentPath: string): string {
  const candidates = tartPath.includes("/") ? [tartPath] : agentPath.split(":").filter(Boolean).map((dir) => join(dir, tartPath));
  const found = candidates.find(isExecutableFile);
  if (!found) {
    const where = tartPath.includes("/") ? `"${tartPath}"` : `"${tartPath}" in the agents' PATH (${agentPath})`;
    throw new TartMissingError(`tart not found at ${where}: install it (brew install cirruslabs/cli/tart) or fix host.tart_path`, "install", 127, "", "unavailable");
  }
  return found;
}

export async function checkTartVersion(run: CommandRunner, tartPath: string): Promise<string> {
  const r = await run([tartPath, "--version"]);
  if (r.code !== 0) throw new TartVersionError(`${tartPath} --version failed (${r.stderr.split("\n")[0] || `exit ${r.code}`}): reinstall tart (brew reinstall cirruslabs/cli/tart)`);
  const verdict = judgeTartVersion(r.stdout);
  if (!verdict.ok) throw new TartVersionError(`${verdict.problem} (${tartPath}): ${verdict.fix}, then run install again`);
  return verdict.version;
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
