// The sim's /var/db/dhcpd_leases: MAC -> loopback address (127.0.0.x), kept
// under $TART_HOME. Like macOS's bootpd, a lease outlives the VM, so `ip`
// answers with a stale address for a stopped VM (issue #172).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { simDir } from "./home.ts";
import { withFileLock } from "./filelock.ts";

export interface Lease {
  mac: string;
  ip: string;
  /** Epoch milliseconds. */
  expires: number;
}

const leasesPath = () => join(simDir(), "dhcpd_leases.json");

function readLeases(): Lease[] {
  try {
    return JSON.parse(readFileSync(leasesPath(), "utf8")) as Lease[];
  } catch {
    return [];
  }
}

/** The unexpired lease for a MAC, if any. */
export function leaseFor(mac: string): Lease | undefined {
  return readLeases().find((l) => l.mac === mac && l.expires > Date.now());
}

/**
 * Picks an address for a booting VM: its previous lease if it has one and
 * `isFree` accepts it, else a random 127.0.0.x no other lease holds.
 */
export function offerAddress(mac: string, isTaken: (ip: string) => boolean = () => false): string {
  const leases = readLeases();
  const own = leases.find((l) => l.mac === mac);
  if (own && !isTaken(own.ip)) return own.ip;
  const held = new Set(leases.filter((l) => l.mac !== mac && l.expires > Date.now()).map((l) => l.ip));
  for (let i = 0; i < 1000; i++) {
    const ip = `127.0.0.${2 + Math.floor(Math.random() * 253)}`;
    if (!held.has(ip) && !isTaken(ip)) return ip;
  }
  throw new Error("no free 127.0.0.x address for a VM");
}

export function recordLease(mac: string, ip: string, lifetimeSeconds: number): void {
  mkdirSync(simDir(), { recursive: true });
  withFileLock(`${leasesPath()}.lock`, () => {
    const leases = readLeases().filter((l) => l.mac !== mac && l.ip !== ip);
    leases.push({ mac, ip, expires: Date.now() + lifetimeSeconds * 1000 });
    const tmp = `${leasesPath()}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify(leases));
    renameSync(tmp, leasesPath());
  });
}
