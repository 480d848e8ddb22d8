// macOS networking of the VMs: vmnet's DHCP (bootpd) lease time and how full
// its pool is, and the Local Network permission the slot agents need on
// vm.transport ssh (without it, their connections to 192.168.64.x fail with
// EHOSTUNREACH); read from what the agents last saw, not only doctor's probe.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { readReaches } from "../../vm/reach.ts";
import { fail, macosOnly, pass, skip, warn, withDeadline, type Check } from "./types.ts";

const SHARING_PLIST = "/Library/Preferences/SystemConfiguration/com.apple.InternetSharing.default.plist";
const LEASES = "/var/db/dhcpd_leases";
/** 192.168.64.0/24 less network, gateway and broadcast. */
const POOL = 253;
const GATEWAY = "192.168.64.1";
/** The FAQ's advice for ephemeral VMs: 10 minutes instead of a day. */
const WANT_LEASE_S = 600;

export const dhcpCheck: Check = async (ctx) => {
  if (ctx.platform !== "darwin") return [macosOnly("dhcp-lease-time"), macosOnly("dhcp-leases")];
  const results = [];
  const r = await ctx.run(["defaults", "read", SHARING_PLIST, "bootpd"]);
  const secs = Number(/DHCPLeaseTimeSecs\s*=\s*(\d+)/.exec(r.stdout)?.[1] ?? NaN);
  const fix = `sudo defaults write ${SHARING_PLIST} bootpd -dict DHCPLeaseTimeSecs -int ${WANT_LEASE_S}`;
  if (!Number.isFinite(secs)) results.push(warn("dhcp-lease-time", "DHCPLeaseTimeSecs not set (macOS default: 86400 s, one lease per VM for a day)", fix));
  else if (secs > 3600) results.push(warn("dhcp-lease-time", `DHCPLeaseTimeSecs is ${secs} s; every job's VM holds a lease that long`, fix));
  else results.push(pass("dhcp-lease-time", `DHCPLeaseTimeSecs is ${secs} s`));

  let leases = 0;
  try {
    leases = (readFileSync(LEASES, "utf8").match(/^\s*ip_address=/gm) ?? []).length;
  } catch {
    // no file yet: no VM has booted since the last reset
  }
  const found = `${leases} of ~${POOL} addresses of 192.168.64.0/24 leased (${LEASES})`;
  if (leases >= POOL - 10) results.push(fail("dhcp-leases", found, `new VMs get no IP: shorten the lease time (${fix}) and remove stale entries from ${LEASES}`));
  else if (leases >= POOL * 0.75) results.push(warn("dhcp-leases", found, `shorten the lease time: ${fix}`));
  else results.push(pass("dhcp-leases", found));
  return results;
};

function reach(host: string, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    const done = (err?: Error) => {
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.once("connect", () => done());
    s.once("error", (e) => done(e));
    signal.addEventListener("abort", () => done(new Error("timed out")), { once: true });
  });
}

const GRANT_FIX =
  "set vm.transport: exec (the tart guest agent; no network needed), or allow Local Network for the slot agents' binary (System Settings > Privacy & Security > Local Network; an upgrade of the binary can ask again; see docs/hosts.md)";

/**
 * What the slot agents themselves last saw (reach-<slot>.json in state_dir):
 * doctor runs from a Terminal, which macOS exempts from Local Network
 * privacy, so its own probe passes where a LaunchAgent is refused.
 */
export const localNetworkCheck: Check = async (ctx) => {
  const { config, tart } = ctx;
  if (!config) return [skip("local-network", "config invalid")];
  const reaches = readReaches(config.host.stateDir);
  const refused = reaches.filter((r) => r.outcome === "refused");
  if (refused.length > 0) {
    const r = refused[0]!;
    return [fail("local-network", `slot ${refused.map((x) => x.slot).join(", ")} was refused by Local Network privacy when it reached its guest over ${r.transport} (${r.at})`, GRANT_FIX)];
  }
  if (config.vm.transport === "exec") {
    const seen = reaches.filter((r) => r.transport === "exec").map((r) => `slot ${r.slot} at ${r.at}`);
    return [pass("local-network", `vm.transport exec: the slots reach their guests through tart exec, no network${seen.length ? `; last reached: ${seen.join(", ")}` : ""}`)];
  }
  const ok = reaches.filter((r) => r.transport === "ssh" && r.outcome === "ok");
  if (ok.length > 0) return [pass("local-network", `the slot agents reached their guests over ssh: ${ok.map((r) => `slot ${r.slot} at ${r.at}`).join(", ")}`)];
  if (ctx.platform !== "darwin") return [macosOnly("local-network")];
  if (!tart) return [skip("local-network", "config invalid")];
  const running = (await tart.list().catch(() => [])).find((v) => v.Running);
  const target = running ? { host: await tart.ip(running.Name, 1).catch(() => GATEWAY), port: config.vm.ssh.port, what: `VM ${running.Name}` } : { host: GATEWAY, port: 53, what: "the vmnet gateway" };
  try {
    await withDeadline(ctx.timeoutMs, `${target.host}:${target.port}`, (signal) => reach(target.host, target.port, signal));
    return [warn("local-network", `doctor reached ${target.what} at ${target.host}:${target.port}, but no slot agent has reported yet (a Terminal is exempt from Local Network privacy; the agents are not)`, "run a cycle and doctor again, or set vm.transport: exec")];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!running && e.code === "ECONNREFUSED") return [warn("local-network", `${GATEWAY} answered doctor (refused port ${target.port}), but no slot agent has reported yet (a Terminal is exempt from Local Network privacy; the agents are not)`, "run a cycle and doctor again, or set vm.transport: exec")];
    return [fail("local-network", `cannot reach ${target.what} at ${target.host}:${target.port} (${e.code ?? e.message})`, GRANT_FIX)];
  }
};
