// The checks of this Mac itself: config, signature, tart, session, agents, VMs, disk.
import { existsSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../config/index.ts";
import { isSlotsOwn } from "../../config/names.ts";
import type { CommandRunner } from "../../core/proc.ts";
import { parseImageRef } from "../../image/oci-ref.ts";
import { tartHome } from "../../vm/tart-cache.ts";
import { judgeTartVersion } from "../../vm/tart-version.ts";
import { DAEMONS_DIR, PULL_LABEL, printDomainArgv, printServiceArgv, slotLabel } from "../launchd/launchctl.ts";
import { slotViews } from "../slot-view.ts";
import { fail, macosOnly, pass, skip, skipAll, warn, type Check, type CheckResult, type DoctorContext } from "./types.ts";

export const configCheck = (loadError: unknown): Check => async (ctx) => {
  if (ctx.config) return [pass("config", `${ctx.config.file} is valid`)];
  const problems = loadError instanceof ConfigError && loadError.problems.length > 0
    ? loadError.problems.map((p) => `${p.line ? `line ${p.line}: ` : ""}${p.path ? `${p.path}: ` : ""}${p.message}`).join(" | ")
    : (loadError as Error).message;
  return [fail("config", problems, `fix ${ctx.configPath} (the problems name key and line)`)];
};

export const signatureCheck: Check = (ctx) => checkBinarySignature(ctx.binaryPath, ctx.platform, ctx.run);

/** By absolute path: a codesign earlier on PATH is not Apple's. */
const CODESIGN = "/usr/bin/codesign";

export async function checkBinarySignature(path: string | undefined, platform: NodeJS.Platform, run: CommandRunner): Promise<CheckResult[]> {
  if (!path) return [skip("signature", "not the compiled binary (run from source)")];
  // Only macOS runs the darwin binary; the build checks its page hashes (tools/codesign.ts).
  if (platform !== "darwin") return [skip("signature", `${path} runs on ${platform}, not macOS: a Mac checks its own with codesign`)];
  const r = await run([CODESIGN, "--verify", "--strict", path]);
  if (r.code === 0) return [pass("signature", `codesign --verify --strict accepts ${path}`)];
  const why = r.timedOut ? "timed out" : r.stderr.split("\n").filter(Boolean).join("; ") || `exit ${r.code}`;
  const resign = `re-sign it ad hoc: ${CODESIGN} --force --sign - ${path} (the playbook does this on each run), or copy a fresh build`;
  return [fail("signature", `codesign --verify --strict rejects ${path}: ${why}; launchd's agents would be killed at launch (Killed: 9)`, resign)];
}

export const tartCheck: Check = async (ctx) => {
  if (!ctx.config) return [skip("tart", "config invalid")];
  const path = ctx.config.host.tartPath;
  const r = await ctx.run([path, "--version"]);
  if (r.code === 127) return [fail("tart", `tart not found at "${path}"`, "install it (brew install cirruslabs/cli/tart) or fix host.tart_path")];
  if (r.code !== 0) return [fail("tart", `${path} --version failed: ${r.stderr || `exit ${r.code}`}`, "reinstall tart (brew reinstall cirruslabs/cli/tart)")];
  const verdict = judgeTartVersion(r.stdout);
  if (!verdict.ok) return [fail("tart", `${verdict.problem} (at ${path})`, verdict.fix)];
  return [pass("tart", `tart ${verdict.version} at ${path}`)];
};

// Virtualization.framework needs a console (Aqua) session.
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

/** The system domain is exempt from Local Network privacy; an earlier release's pull agent is not. */
async function pullDaemon(ctx: DoctorContext): Promise<CheckResult> {
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

// Apple's licence: two macOS VMs at once. After a VZ leak the limit stays hit
// with nothing running; only a reboot clears it.
const VM_LIMIT = 2;

export const vmsCheck: Check = async (ctx) => {
  const { config, tart } = ctx;
  if (!config || !tart) return skipAll(["vm-limit", "leaked-vms", "host-degraded"], "config invalid");
  const degraded = hostDegradedCheck(config.host.stateDir, config.host.slots);
  let listed;
  try {
    listed = await tart.list();
  } catch (err) {
    return [fail("vm-limit", `tart list failed: ${(err as Error).message}`, "fix tart first (see the tart check)"), degraded];
  }
  const named = new Set(slotViews(config.host.stateDir, config.host.slots).flatMap((v) => [v.vm, v.next_vm?.name]));
  const running = listed.filter((v) => v.Running).map((v) => v.Name);
  const ours = (name: string) => [1, 2].some((s) => isSlotsOwn(name, config.runner.namePrefix, s, ctx.host));
  const leaked = running.filter((n) => ours(n) && !named.has(n));
  const foreign = running.filter((n) => !ours(n));
  const results = [];
  const room = VM_LIMIT - foreign.length - leaked.length;
  if (room < config.host.slots) {
    results.push(fail("vm-limit", `${running.length} VM(s) running (${running.join(", ")}); only ${Math.max(0, room)} of ${config.host.slots} slot(s) can start a VM under the ${VM_LIMIT}-VM limit`,
      "stop the VMs no slot owns (tart stop NAME); if tart list shows none running and starts still fail with the system limit, reboot the host"));
  } else {
    results.push(pass("vm-limit", `${running.length} VM(s) running, room for ${config.host.slots} slot(s) under the ${VM_LIMIT}-VM limit`));
  }
  if (leaked.length > 0) {
    results.push(fail("leaked-vms", `running but named by no slot's state: ${leaked.join(", ")}`, `tart stop ${leaked[0]} && tart delete ${leaked[0]} (or cleanup --slot N --sweep)`));
  } else {
    results.push(pass("leaked-vms", "every running VM of this host is named by its slot's state"));
  }
  results.push(degraded);
  return results;
};

/** The slots saw the VM limit with fewer than two VMs running, past the time a place takes to free. */
function hostDegradedCheck(stateDir: string, slots: number) {
  const seen = slotViews(stateDir, slots).flatMap((v) => (v.host_degraded_at ? [`slot ${v.slot} at ${v.host_degraded_at}`] : []));
  if (seen.length === 0) return pass("host-degraded", "no slot found the host unable to start VMs");
  return fail("host-degraded", `the host cannot start VMs: macOS reports its VM limit with fewer than two VMs running (${seen.join(", ")}); VM places leaked`,
    "reboot the Mac (only a reboot frees leaked VM places); the slots wait host.backoff_max between tries until then");
}

// A pull needs the new image's allocated size (tart list's Size; disks are sparse) while the old is in use.
/** Clones' growth, logs, macOS updates. */
const PULL_FLOOR_GB = 30;
/** Before one is cached: a macOS image with Xcode takes ~40 GB of its 50 GB disk. */
const DEFAULT_IMAGE_GB = 40;

export const diskCheck: Check = async (ctx) => {
  const { config, tart } = ctx;
  if (!config || !tart) return [skip("disk", "config invalid")];
  const home = tartHome(ctx.env);
  let freeGb: number;
  try {
    const st = statfsSync(home);
    freeGb = (st.bavail * st.bsize) / 1e9;
  } catch (err) {
    return [fail("disk", `cannot read free space of ${home}: ${(err as Error).message}`, "check TART_HOME")];
  }
  let imageGb = DEFAULT_IMAGE_GB;
  let sizeFrom = `assumed ${DEFAULT_IMAGE_GB} GB (not cached yet)`;
  try {
    const r = await ctx.run([config.host.tartPath, "list", "--format", "json"]);
    const entries = JSON.parse(r.stdout || "[]") as { Name: string; Size: number }[];
    const remote = parseImageRef(config.image.ref);
    const hit = entries.find((e) => e.Name === config.image.ref || (remote && e.Name.startsWith(`${remote.host}/${remote.namespace}`)));
    if (hit) {
      imageGb = hit.Size;
      sizeFrom = `${hit.Size} GB on disk (${hit.Name})`;
    }
  } catch {
    // keep the assumption
  }
  const need = imageGb + PULL_FLOOR_GB;
  const found = `${freeGb.toFixed(1)} GB free in ${home}; image ${sizeFrom}, floor ${PULL_FLOOR_GB} GB`;
  if (freeGb < imageGb) return [fail("disk", found, "free space: tart prune --entries caches --older-than 7, delete old VMs (tart list), or a bigger disk")];
  if (freeGb < need) return [warn("disk", found, `a pull of the next image needs ${need} GB; tart prune --entries caches --older-than 7`)];
  return [pass("disk", found)];
};
