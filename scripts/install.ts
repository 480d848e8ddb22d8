// install: the launchd jobs for this host from the config (an agent per slot
// in the GUI session, the `pull` daemon in the system domain); --remove drains and unloads them.
import { realpathSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { runCli, type CommandSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig } from "../lib/config/index.ts";
import { exitCode } from "../lib/core/errors.ts";
import type { CommandRunner } from "../lib/core/proc.ts";
import { agentParams, applyPlan, describePlan, installPlan, removePlan, type InstallOptions } from "../lib/host/launchd/install.ts";
import { DAEMONS_DIR, runLaunchctl } from "../lib/host/launchd/launchctl.ts";
import { renderAgents } from "../lib/host/launchd/render.ts";
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

/** The command links sit beside the real binary (`install` may be a link from elsewhere). */
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
    process.stdout.write(`${describePlan(o, steps, Boolean(args.values.remove)).join("\n")}\n`);
    return exitCode("ok");
  }

  const say = (line: string) => process.stdout.write(`${line}\n`);
  await applyPlan(o, steps, { remove: Boolean(args.values.remove), agentPath, run, say });
  say(args.values.remove ? "agents removed" : agents.map((a) => `${a.label} loaded in ${a.domain === "gui" ? `gui/${o.uid}` : "system"}`).join(", "));
  return exitCode("ok");
}

if (import.meta.main) await runCli(spec, (args) => main(args));
