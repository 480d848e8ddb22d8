// install: renders the launchd agents for this host from the config (one per
// slot, plus `pull` when that command is present), loads them into the
// auto-login user's GUI session, and with --remove drains and unloads them.
import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { runCli, type CommandSpec, type Parsed } from "../lib/cli.ts";
import { loadConfig, type Config } from "../lib/config.ts";
import { exitCode, MacosRunnerError } from "../lib/errors.ts";
import { runLaunchctl } from "../lib/launchd/launchctl.ts";
import { allLabels, MAX_SLOTS } from "../lib/launchd/labels.ts";
import { CLEANUP_MARGIN_S, renderAgents, slotExitTimeOut, type AgentParams, type RenderedAgent } from "../lib/launchd/render.ts";
import { checkBinary, checkGuiSession, checkMacos, checkTart, checkTartVersion, isExecutableFile } from "../lib/launchd/host-checks.ts";
import { describeStep, executeStep, type Step, type StopTarget } from "../lib/launchd/plan.ts";
import type { CommandRunner } from "../lib/proc.ts";
import { MIN_TART_VERSION } from "../lib/vm/tart-version.ts";

const options = {
  "dry-run": { type: "boolean", description: "print the plists and the commands, change nothing (works on any OS)" },
  remove: { type: "boolean", description: "uninstall: drain the slots (running jobs finish), run cleanup, remove the agents" },
  "agents-dir": { type: "string", value: "DIR", description: "where the plists go (default ~/Library/LaunchAgents)" },
  "bin-dir": { type: "string", value: "DIR", description: "where loop, pull and cleanup are (default: the directory of the macos-runner binary)" },
} as const;

export const spec: CommandSpec<typeof options> = {
  name: "install",
  summary: "load (or with --remove, drain and unload) this host's launchd agents",
  options,
  exits: {
    failure: "launchctl refused to bootstrap or bootout an agent",
    unavailable: `not macOS (use --dry-run elsewhere), no GUI session for this user (enable auto-login and log in), tart not found or older than ${MIN_TART_VERSION}, or loop not in the bin dir`,
    tempfail: "an agent was still loaded after its ExitTimeOut; run again",
  },
};

export interface InstallOptions {
  config: Config;
  binDir: string;
  agentsDir: string;
  uid: number;
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
  };
}

function stopTargets(o: InstallOptions): StopTarget[] {
  const fallback = slotExitTimeOut(o.config.runner.jobTimeoutMs);
  return allLabels().map((label) => ({ label, plistPath: plistPath(o, label), fallbackExitTimeOutS: fallback }));
}

const plistPath = (o: InstallOptions, label: string): string => join(o.agentsDir, `${label}.plist`);

/** Replaces every agent: stop what is loaded (also agents no longer wanted), write, bootstrap. */
export function installPlan(o: InstallOptions, agents: RenderedAgent[]): Step[] {
  const wanted = new Set(agents.map((a) => a.label));
  return [
    ...[o.config.host.logDir, o.config.host.stateDir, o.agentsDir].map((path): Step => ({ kind: "mkdir", path })),
    { kind: "stop", agents: stopTargets(o) },
    ...allLabels()
      .filter((l) => !wanted.has(l))
      .map((l): Step => ({ kind: "remove", path: plistPath(o, l) })),
    ...agents.map((a): Step => ({ kind: "write", path: plistPath(o, a.label), content: a.xml })),
    ...agents.map((a): Step => ({ kind: "start", label: a.label, plistPath: plistPath(o, a.label) })),
  ];
}

/** Drains: bootout (jobs finish), wait, run cleanup for each slot if that binary exists, remove the plists. */
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
    uid: process.getuid?.() ?? 0,
  };
  const params = agentParams(o);
  const agents = renderAgents(params);
  const steps = args.values.remove ? removePlan(o) : installPlan(o, agents);
  const agentPath = agents[0]!.plist.EnvironmentVariables!.PATH!;

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
  say(args.values.remove ? "agents removed" : `${agents.map((a) => a.label).join(", ")} loaded in gui/${o.uid}`);
  return exitCode("ok");
}

if (import.meta.main) await runCli(spec, (args) => main(args));
