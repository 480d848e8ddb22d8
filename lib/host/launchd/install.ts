// What `install` does to a host, from the config: the parameters the launchd
// jobs are rendered from (one agent per slot in the auto-login user's GUI
// session, plus the `pull` daemon as root in the system domain, run as this
// user), the plan that installs them or drains and removes them, its
// --dry-run text, and its execution after the host checks.
import { join } from "node:path";
import type { Config } from "../../config/index.ts";
import { MacosRunnerError } from "../../core/errors.ts";
import type { CommandRunner } from "../../core/proc.ts";
import { MIN_TART_VERSION } from "../../vm/tart-version.ts";
import { checkBinary, checkGuiSession, checkMacos, checkTart, checkTartVersion, isExecutableFile } from "./host-checks.ts";
import { allLabels, MAX_SLOTS, PULL_LABEL } from "./labels.ts";
import { describeStep, executeStep, type Step, type StopTarget } from "./plan.ts";
import { CLEANUP_MARGIN_S, slotExitTimeOut, type AgentParams, type RenderedAgent } from "./render.ts";

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

/** What --dry-run prints: the checks, then each step as the command it would run. */
export function describePlan(o: InstallOptions, steps: Step[], remove: boolean): string[] {
  return [
    `# install${remove ? " --remove" : ""} --dry-run: nothing was changed. On the host it would:`,
    "# check: running on macOS",
    `# check: a GUI session for uid ${o.uid}: launchctl print gui/${o.uid}`,
    ...(remove ? [] : [`# check: tart at ${o.config.host.tartPath} (host.tart_path), version ${MIN_TART_VERSION} or later`, `# check: ${join(o.binDir, "loop")} exists`]),
    ...steps.flatMap((s) => describeStep(s, o.uid)),
  ];
}

/**
 * Checks the host (macOS, a GUI session; to install: tart, found on the
 * agents' PATH, and loop), then executes the steps in order, saying each.
 */
export async function applyPlan(o: InstallOptions, steps: Step[], how: { remove: boolean; agentPath: string; run: CommandRunner; say: (line: string) => void }): Promise<void> {
  checkMacos();
  await checkGuiSession(how.run, o.uid);
  if (!how.remove) {
    await checkTartVersion(how.run, checkTart(o.config.host.tartPath, how.agentPath));
    checkBinary(o.binDir, "loop");
  }
  for (const step of steps) await executeStep(step, o.uid, how.run, how.say);
}
