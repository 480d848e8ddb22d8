// macOS networking of the VMs: vmnet's DHCP (bootpd) lease time and how full
// its pool is, and the Local Network permission that lets this process reach
// a guest (without it, connections to 192.168.64.x fail with EHOSTUNREACH).
import { readFileSync } from "node:fs";
import { connect } from "node:net";
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

export const localNetworkCheck: Check = async (ctx) => {
  if (ctx.platform !== "darwin") return [macosOnly("local-network")];
  const { config, tart } = ctx;
  if (!config || !tart) return [skip("local-network", "config invalid")];
  const running = (await tart.list().catch(() => [])).find((v) => v.Running);
  const target = running ? { host: await tart.ip(running.Name, 1).catch(() => GATEWAY), port: config.vm.ssh.port, what: `VM ${running.Name}` } : { host: GATEWAY, port: 53, what: "the vmnet gateway" };
  try {
    await withDeadline(ctx.timeoutMs, `${target.host}:${target.port}`, (signal) => reach(target.host, target.port, signal));
    return [pass("local-network", `reached ${target.what} at ${target.host}:${target.port}`)];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!running && e.code === "ECONNREFUSED") return [pass("local-network", `${GATEWAY} answered (refused port ${target.port}): the network is reachable`)];
    return [fail("local-network", `cannot reach ${target.what} at ${target.host}:${target.port} (${e.code ?? e.message})`,
      "allow Local Network for this binary (System Settings > Privacy & Security > Local Network); launchd agents inherit the permission of the binary they run")];
  }
};
