// vmnet's DHCP lease time and pool, and the Local Network grant the slot agents
// need on vm.transport ssh.
import { readFileSync } from "node:fs";
import { readReaches } from "../../vm/reach.ts";
import { fail, macosOnly, pass, skip, warn, type Check } from "./types.ts";

const SHARING_PLIST = "/Library/Preferences/SystemConfiguration/com.apple.InternetSharing.default.plist";
const LEASES = "/var/db/dhcpd_leases";
/** 192.168.64.0/24 less network, gateway and broadcast. */
const POOL = 253;
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
    // no VM has booted since the last reset
  }
  const found = `${leases} of ~${POOL} addresses of 192.168.64.0/24 leased (${LEASES})`;
  if (leases >= POOL - 10) results.push(fail("dhcp-leases", found, `new VMs get no IP: shorten the lease time (${fix}) and remove stale entries from ${LEASES}`));
  else if (leases >= POOL * 0.75) results.push(warn("dhcp-leases", found, `shorten the lease time: ${fix}`));
  else results.push(pass("dhcp-leases", found));
  return results;
};

const GRANT_FIX =
  "set vm.transport: exec (the tart guest agent; no network needed), or allow Local Network for the slot agents' binary (System Settings > Privacy & Security > Local Network; an upgrade of the binary can ask again; see docs/hosts.md)";

/**
 * What the slot agents last saw: doctor runs from a Terminal, which macOS exempts
 * from Local Network privacy, so a probe of its own would pass where they are refused.
 */
export const localNetworkCheck: Check = async (ctx) => {
  const { config } = ctx;
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
  return [warn("local-network", "vm.transport ssh: no slot agent has reached its guest yet, so whether Local Network privacy lets the agents through is not known", "run `macos-runner selftest` (it checks from a launchd agent, where the slots run), or set vm.transport: exec")];
};
