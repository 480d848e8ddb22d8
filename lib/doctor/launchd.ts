// The slots run as launchd agents in the user's GUI (Aqua) session
// (contracts: Virtualization.framework needs a console session).
import { printDomainArgv, printServiceArgv } from "../launchd/launchctl.ts";
import { slotLabel } from "../launchd/labels.ts";
import { fail, macosOnly, pass, skip, type Check } from "./types.ts";

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
  if (missing.length > 0) return [fail("launchd-agents", `not loaded in gui/${ctx.uid}: ${missing.join(", ")}`, "run install (or the ansible playbook) to load them")];
  return [pass("launchd-agents", `${labels.join(", ")} loaded`)];
};
