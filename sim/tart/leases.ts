// The sim's bootpd: hands each booting guest a loopback address (127.A.B.x,
// one /24 per lease file, as each Mac has its own bridge100 network) for its MAC and records the lease in the bootpd-format file that tart's
// dhcp resolver reads ($TART_HOME/sim/dhcpd_leases, or `leases_file`). As on
// macOS, a lease outlives its VM (`ip` answers with a stale address for a
// stopped VM, issue #172) and an address stays taken until its lease expires.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { simDir } from "./home.ts";
import { withFileLock } from "./filelock.ts";
import { parseLeases, renderLeases, resolveLease, type Lease } from "./dhcpd-leases.ts";
import { loadSettings } from "./settings.ts";

/** The host name a macOS guest of the image sends (every clone the same). */
const GUEST_HOSTNAME = "admins-Virtual-Machine";

const leasesPath = () => loadSettings().leases_file ?? join(simDir(), "dhcpd_leases");

/**
 * The first three octets of this host's addresses: a /24 of 127/8 picked by
 * the lease file's path. Hosts simulated side by side (a test's hosts, two
 * test files at once) then never lease one address to two guests, which on
 * one shared /24 happened between a lease and its guest's sshd binding.
 */
function subnet(): string {
  const [a = 0, b = 0] = createHash("sha256").update(leasesPath()).digest();
  return `127.${1 + (a % 254)}.${1 + (b % 254)}`;
}

/** The file's text; empty when there is none yet (tart then finds no lease). */
function readText(): string {
  try {
    return readFileSync(leasesPath(), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

/** The address tart's dhcp resolver answers for a MAC (parse errors throw tart's error). */
export function leasedAddress(mac: string): string | undefined {
  return resolveLease(readText(), mac)?.ip;
}

/**
 * Addresses for a booting guest, best first: its own unexpired lease's, then
 * every address of the host's /24 no other unexpired lease holds, in random order. Empty when
 * the pool is exhausted (bootpd then gives no lease at all).
 */
export function addressCandidates(mac: string): string[] {
  const now = Date.now() / 1000;
  const text = readText();
  const live = parseLeases(text).filter((l) => l.expires > now);
  const own = resolveLease(text, mac, now)?.ip;
  const held = new Set(live.map((l) => l.ip));
  const net = subnet();
  const free = Array.from({ length: 253 }, (_, i) => `${net}.${i + 2}`)
    .filter((ip) => !held.has(ip))
    .map((ip) => ({ ip, order: Math.random() }))
    .sort((a, b) => a.order - b.order)
    .map(({ ip }) => ip);
  return own ? [own, ...free] : free;
}

/** Records (or renews) the lease of a MAC; newest first, as bootpd writes. */
export function recordLease(mac: string, ip: string, lifetimeSeconds: number): void {
  const path = leasesPath();
  mkdirSync(dirname(path), { recursive: true });
  withFileLock(`${path}.lock`, () => {
    const others = parseLeases(readText()).filter((l) => l.mac !== mac && l.ip !== ip);
    const lease: Lease = { mac, ip, expires: Math.floor(Date.now() / 1000) + lifetimeSeconds, name: GUEST_HOSTNAME };
    const tmp = `${path}.${process.pid}`;
    writeFileSync(tmp, renderLeases([lease, ...others]));
    renameSync(tmp, path);
  });
}
