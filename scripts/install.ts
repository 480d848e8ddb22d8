// install: renders the launchd jobs for this host from the config (one agent
// per slot, loaded into the auto-login user's GUI session, plus the `pull`
// daemon when that command is present, loaded as root into the system domain
// and run as this user), and with --remove drains and unloads them.
import { realpathSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { runCli, type CommandSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig, type Config } from "../lib/config/index.ts";
import { exitCode, MacosRunnerError } from "../lib/core/errors.ts";
import { runLaunchctl } from "../lib/host/launchd/launchctl.ts";
import { allLabels, DAEMONS_DIR, MAX_SLOTS, PULL_LABEL } from "../lib/host/launchd/labels.ts";
import { CLEANUP_MARGIN_S, renderAgents, slotExitTimeOut, type AgentParams, type RenderedAgent } from "../lib/host/launchd/render.ts";
import { checkBinary, checkGuiSession, checkMacos, checkTart, checkTartVersion, isExecutableFile } from "../lib/host/launchd/host-checks.ts";
import { describeStep, executeStep, type Step, type StopTarget } from "../lib/host/launchd/plan.ts";
import type { CommandRunner } from "../lib/core/proc.ts";
import { MIN_TART_VERSION } from "../lib/vm/tart-version.ts";

const options = {
  "dry-run": { type: "boolean", description: "print the plists and the commands, change nothing (works on any OS)" },
  remove: { type: "boolean", description: "uninstall: drain the slots (running jobs finish), run cleanup, remove the agents and the pull daemon" },
  "print-daemon": { type: "boolean", description: "print the pull daemon's plist (empty without a pull command) and change nothing; the Ansible playbook installs it as root" },
  "agents-dir": { type: "string", value: "DIR", description: "where the slot agents' plists go (default ~/Library/LaunchAgents)" },
  "daemons-dir": { type: "string", value: "DIR", description: `where the pull daemon's plist goes, as root (default ${DAEMONS_DIR})` },
  "bin-dir": { type: "string", value: "DIR", description: "where loop, pull and cleanup are (default: the directory of the macos-runner binary)" },
} as const;

export const spec: CommandSpec<typeof options> = {
  name: "install",
  summary: "load (or with --remove, drain and unload) this host's launchd agents and pull daemon",
  options,
  exits: {
    failure: "launchctl refused to bootstrap or bootout an agent",
    unavailable: `not macOS (use --dry-run elsewhere), no GUI session for this user (enable auto-login and log in), tart not found or older than ${MIN_TART_VERSION}, loop not in the bin dir, or the pull daemon must change and sudo asks for a password (run sudo -v first)`,
    tempfail: "an agent was still loaded after its ExitTimeOut; run again",
  },
};

export interface InstallOptions {
  config: Config;
  binDir: string;
  agentsDir: string;
  daemonsDir: string;
  uid: number;
  /** The user the agents run as (this one) and the pull daemon runs as. */
  user: { name: string; home: string };
}

/** Maps the config to what the agents are rendered from. */
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
const daemonPath = (o: InstallOptions): string => join(o.daemonsDir, `${PULL_LABEL}.plist`);
/** pull is short; a cut-short pull leaves the pinned image in place. */
const PULL_EXIT_TIMEOUT_S = 60;

/**
 * Replaces every job: the pull daemon first (so a missing sudo changes
 * nothing else), then the slot agents: stop what is loaded (also agents no
 * longer wanted, and a pull agent of an earlier release), write, bootstrap.
 */
export function installPlan(o: InstallOptions, agents: RenderedAgent[]): Step[] {
  const gui = agents.filter((a) => a.domain === "gui");
  const daemon = agents.find((a) => a.domain === "system");
  const wanted = new Set(gui.map((a) => a.label));
  const pull = { label: PULL_LABEL, plistPath: daemonPath(o), fallbackExitTimeOutS: PULL_EXIT_TIMEOUT_S };
  return [
    ...[o.config.host.logDir, o.config.host.stateDir, o.agentsDir].map((path): Step => ({ kind: "mkdir", path })),
    daemon ? { kind: "daemon", ...pull, content: daemon.xml } : { kind: "daemon-remove", ...pull },
    { kind: "stop", agents: stopTargets(o) },
    ...allLabels()
      .filter((l) => !wanted.has(l))
      .map((l): Step => ({ kind: "remove", path: plistPath(o, l) })),
    ...gui.map((a): Step => ({ kind: "write", path: plistPath(o, a.label), content: a.xml })),
    ...gui.map((a): Step => ({ kind: "start", label: a.label, plistPath: plistPath(o, a.label) })),
  ];
}

/** Drains: bootout (jobs finish), wait, run cleanup for each slot if that binary exists, remove the plists, then the pull daemon. */
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
    { kind: "daemon-remove", label: PULL_LABEL, plistPath: daemonPath(o), fallbackExitTimeOutS: PULL_EXIT_TIMEOUT_S },
  ];
}

/**
 * The command links sit beside the macos-runner binary, so a compiled
 * `install` finds loop, pull and cleanup in the directory of the real file
 * (resolved: `install` may be a link from elsewhere).
 */
function defaultBinDir(): string {
  return Bun.isStandaloneExecutable ? dirname(realpathSync(process.execPath)) : join(import.meta.dir, "..", "dist", "darwin-arm64");
}

export async function main(args: Parsed<typeof options>, run: CommandRunner = runLaunchctl): Promise<number> {
  const config = loadConfig({ path: args.common.config });
  const o: InstallOptions = {
    config,
    binDir: args.values["bin-dir"] ?? defaultBinDir(),
    agentsDir: args.values["agents-dir"] ?? join(homedir(), "Library", "LaunchAgents"),
    daemonsDir: args.values["daemons-dir"] ?? DAEMONS_DIR,
    uid: process.getuid?.() ?? 0,
    user: { name: userInfo().username, home: homedir() },
  };
  const params = agentParams(o);
  const agents = renderAgents(params);
  const steps = args.values.remove ? removePlan(o) : installPlan(o, agents);
  const agentPath = agents[0]!.plist.EnvironmentVariables!.PATH!;
  if (args.values["print-daemon"]) {
    process.stdout.write(agents.find((a) => a.domain === "system")?.xml ?? "");
    return exitCode("ok");
  }

  if (args.values["dry-run"]) {
    const out = [
      `# install${args.values.remove ? " --remove" : ""} --dry-run: nothing was changed. On the host it would:`,
      "# check: running on macOS",
      `# check: a GUI session for uid ${o.uid}: launchctl print gui/${o.uid}`,
      ...(args.values.remove ? [] : [`# check: tart at ${config.host.tartPath} (host.tart_path), version ${MIN_TART_VERSION} or later`, `# check: ${join(o.binDir, "loop")} exists`]),
      ...steps.flatMap((s) => describeStep(s, o.uid)),
    ];
    process.stdout.write(`${out.join("\n")}\n`);
    return exitCode("ok");
  }

  checkMacos();
  await checkGuiSession(run, o.uid);
  if (!args.values.remove) {
    await checkTartVersion(run, checkTart(config.host.tartPath, agentPath));
    checkBinary(o.binDir, "loop");
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  for (const step of steps) await executeStep(step, o.uid, run, say);
  say(args.values.remove ? "agents removed" : agents.map((a) => `${a.label} loaded in ${a.domain === "gui" ? `gui/${o.uid}` : "system"}`).join(", "));
  return exitCode("ok");
}

if (import.meta.main) await runCli(spec, (args) => main(args));
