// The slots run as launchd agents in the user's GUI (Aqua) session
// (Virtualization.framework needs a console session); pull runs as a launchd
// daemon in the system domain.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { printDomainArgv, printServiceArgv } from "../launchd/launchctl.ts";
import { DAEMONS_DIR, PULL_LABEL, slotLabel } from "../launchd/labels.ts";
import { fail, macosOnly, pass, skip, warn, type Check, type CheckResult } from "./types.ts";

export const guiSessionCheck: Check = async (ctx) => {
  if (ctx.platform !== "darwin") return [macosOnly("gui-session")];
  const r = await ctx.run(printDomainArgv(ctx.uid));
  if (r.code !== 0) {
    return [fail("gui-session", `no GUI session for uid ${ctx.uid} (launchctl print gui/${ctx.uid}: ${r.stderr.split("\n")[0] || `exit ${r.code}`})`,
      "enable automatic login for this user (System Settings > Users & Groups), reboot or log in once at the console")];
  }
  return [pass("gui-session", `gui/${ctx.uid} exists (the user is logged in at the console)`)];
};

export const agentsCheck: Check = async (ctx) => {
  if (ctx.platform !== "darwin") return [macosOnly("launchd-agents")];
  if (!ctx.config) return [skip("launchd-agents", "config invalid")];
  const labels = Array.from({ length: ctx.config.host.slots }, (_, i) => slotLabel(i + 1));
  const missing: string[] = [];
  for (const label of labels) if ((await ctx.run(printServiceArgv(ctx.uid, label))).code !== 0) missing.push(label);
  const agents = missing.length > 0
    ? fail("launchd-agents", `not loaded in gui/${ctx.uid}: ${missing.join(", ")}`, "run install (or the ansible playbook) to load them")
    : pass("launchd-agents", `${labels.join(", ")} loaded`);
  return [agents, await pullDaemon(ctx)];
};

/** The pull daemon (system domain, exempt from Local Network privacy), if installed; a pull agent of an earlier release is not. */
async function pullDaemon(ctx: Parameters<Check>[0]): Promise<CheckResult> {
  const plist = join(DAEMONS_DIR, `${PULL_LABEL}.plist`);
  if ((await ctx.run(printServiceArgv(ctx.uid, PULL_LABEL))).code === 0) {
    return warn("pull-daemon", `${PULL_LABEL} runs as a LaunchAgent in gui/${ctx.uid} (an earlier release): a registry on this host's LAN needs the Local Network grant for it`, "run install again: it makes pull a launchd daemon, which needs no grant");
  }
  if (!existsSync(plist)) return skip("pull-daemon", `no ${plist} (install found no pull command)`);
  if ((await ctx.run(printServiceArgv("system", PULL_LABEL))).code !== 0) {
    return fail("pull-daemon", `${plist} is there but not loaded in the system domain`, `sudo launchctl bootstrap system ${plist} (or run install again)`);
  }
  return pass("pull-daemon", `${PULL_LABEL} loaded in the system domain`);
}
