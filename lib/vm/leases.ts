// The VM's address from /var/db/dhcpd_leases, as tart's resolver reads it, but
// watched instead of tart's once-a-second `ip --wait`. Entries look like
//   {
//   	name=admins-Virtual-Machine
//   	ip_address=192.168.64.3
//   	hw_address=1,a6:5e:7:1:2c:b
//   	identifier=1,a6:5e:7:1:2c:b
//   	lease=0x6571f2a3
//   }
// (octets lose their leading zeros; lease is the expiry, epoch seconds in hex)
import { readFileSync, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { Clock } from "../core/wait.ts";

export interface Lease {
  ip: string;
  mac: string;
  expiresAtMs: number;
}

/** `0a:05:…` and `a:5:…` are the same MAC: bootpd's short form. */
export function shortMac(mac: string): string {
  return mac.toLowerCase().split(":").map((o) => o.replace(/^0(?=.)/, "")).join(":");
}

export function parseLeases(text: string): Lease[] {
  const leases: Lease[] = [];
  for (const block of text.split("}")) {
    const field = (k: string) => new RegExp(`^\\s*${k}=(.*)$`, "m").exec(block)?.[1]?.trim();
    const ip = field("ip_address");
    const hw = field("hw_address");
    const lease = field("lease");
    if (!ip || !hw || !lease) continue;
    const mac = hw.replace(/^\d+,/, "");
    const expires = Number.parseInt(lease, 16);
    if (Number.isFinite(expires)) leases.push({ ip, mac: shortMac(mac), expiresAtMs: expires * 1000 });
  }
  return leases;
}

/** Undefined also when the file cannot be read. */
export function leaseFor(path: string, mac: string, now = Date.now()): string | undefined {
  return leaseWatcher(path, mac, { now: () => now })();
}

/**
 * As tart picks it (Leases.swift): the latest unexpired expiry, on a tie the
 * later in the file. bootpd can keep an older unexpired lease of a MAC.
 */
function currentLease(leases: readonly Lease[], mac: string, now: number): Lease | undefined {
  const want = shortMac(mac);
  let best: Lease | undefined;
  for (const l of leases) if (l.mac === want && l.expiresAtMs > now && (!best || l.expiresAtMs >= best.expiresAtMs)) best = l;
  return best;
}

/** leaseFor, parsing the file again only when inode, size or mtime changed: a boot reads it every few ms. */
export function leaseWatcher(path: string, mac: string, clock: Pick<Clock, "now">): () => string | undefined {
  const want = shortMac(mac);
  let seen = "";
  let leases: Lease[] = [];
  return () => {
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
    if (stamp !== seen) {
      try {
        leases = parseLeases(readFileSync(path, "utf8")).filter((l) => l.mac === want);
        seen = stamp;
      } catch {
        return undefined;
      }
    }
    return currentLease(leases, want, clock.now())?.ip;
  };
}

/** Watches the directory (bootpd renames a new file over the old one); best effort, so callers poll as well. */
export function watchLeases(path: string, onChange: () => void): { close(): void } {
  const name = basename(path);
  try {
    const w = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (!file || file === name) onChange();
    });
    w.on("error", () => {});
    return { close: () => w.close() };
  } catch {
    return { close: () => {} };
  }
}
