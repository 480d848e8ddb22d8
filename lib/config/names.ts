// Runner and VM names: <prefix>-<host>-<slot>-<random>. The prefix+host+slot
// part is how a slot recognises what is its own (and never touches the rest).
// The host part is pinned (host.id, or written once to state_dir from the
// machine's hardware id), so a hostname change never orphans a slot's VMs and
// runners, and two Macs that share a hostname do not share names.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";

/** GitHub rejects longer runner names (third-party code and reports; not documented by GitHub). */
export const MAX_NAME = 64;
const SUFFIX = 6;

/** `<prefix>-<host>-<slot>-`, the host part shortened so a full name fits in MAX_NAME. */
export function slotPrefix(prefix: string, slot: number, host: string): string {
  const room = MAX_NAME - prefix.length - String(slot).length - SUFFIX - 3;
  return `${prefix}-${host.slice(0, Math.max(1, room)).replace(/-$/, "")}-${slot}-`;
}

export function newName(prefix: string, slot: number, host: string): string {
  return slotPrefix(prefix, slot, host) + randomBytes(SUFFIX / 2).toString("hex");
}

export function isSlotsOwn(name: string, prefix: string, slot: number, host: string): boolean {
  const p = slotPrefix(prefix, slot, host);
  return name.startsWith(p) && /^[0-9a-f]{6}$/.test(name.slice(p.length));
}

/** This slot's names: new ones, and whether a name is one of them. */
export interface SlotNames {
  readonly prefix: string;
  next(): string;
  owns(name: string): boolean;
  /** The golden VM's name for an image key (hex, e.g. a digest's). */
  golden(imageKey: string): string;
  ownsGolden(name: string): boolean;
}

/**
 * A slot's golden VM (snapshot start) is `<prefix>-<host>-<slot>-golden-<12
 * hex of the image>`; `owns` never matches it, so no sweep, recovery or
 * cleanup of job VMs ever takes a golden.
 */
export function slotNames(prefix: string, slot: number, host: string): SlotNames {
  const own = slotPrefix(prefix, slot, host);
  return {
    prefix: own,
    next: () => newName(prefix, slot, host),
    owns: (name) => isSlotsOwn(name, prefix, slot, host),
    golden: (imageKey) => `${own}golden-${imageKey.slice(0, 12)}`,
    ownsGolden: (name) => name.startsWith(`${own}golden-`) && /^[0-9a-f]{12}$/.test(name.slice(`${own}golden-`.length)),
  };
}

/**
 * The host part of names, read only (doctor, status): host.id when
 * configured, else the id pinned in `<state_dir>/host-id`, else the one the
 * first launch would pin.
 */
export function currentHostId(configured: string | undefined, stateDir: string, source?: MachineIdSource): string {
  return configured ?? pinnedHostId(stateDir) ?? defaultHostId(source).id;
}

/**
 * The host part of names: host.id when configured, else the id pinned in
 * `<state_dir>/host-id` (ids pinned by earlier releases, from the hostname,
 * keep working), else a new one pinned there on this first launch: from the
 * machine (the Mac's hardware UUID), never from the hostname, which Macs
 * imaged the same way share.
 */
export function hostId(configured: string | undefined, stateDir: string, onPinned?: (id: string, from: string) => void, source?: MachineIdSource): string {
  if (configured) return configured;
  const pinned = pinnedHostId(stateDir);
  if (pinned) return pinned;
  const { id, from } = defaultHostId(source);
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(stateDir, "host-id"), `${id}\n`, 0o644);
    onPinned?.(id, from);
  } catch {
    // an unwritable state dir is reported where the slot's state is written
  }
  return id;
}

function pinnedHostId(stateDir: string): string | undefined {
  try {
    const pinned = readFileSync(join(stateDir, "host-id"), "utf8").trim();
    if (/^[a-z0-9-]{1,32}$/.test(pinned)) return pinned;
  } catch {
    // first launch on this host
  }
  return undefined;
}

/** The machine's short id; random (and then pinned) on a machine that has none to read. */
function defaultHostId(source?: MachineIdSource): { id: string; from: string } {
  return machineId(source) ?? { id: randomBytes(4).toString("hex"), from: "random (no machine id could be read)" };
}

// The machine's own identity, for the default host id: the Mac's hardware
// UUID (IOPlatformUUID, which imaging or cloning a disk does not copy), or
// systemd's /etc/machine-id elsewhere (the simulated hosts run on Linux).
export interface MachineIdSource {
  platform?: NodeJS.Platform;
  /** macOS: the ioreg binary (absolute, so the agents' PATH cannot replace it). */
  ioregPath?: string;
  /** Elsewhere: the files holding the machine id, first readable one wins. */
  machineIdFiles?: readonly string[];
}

const IOREG = "/usr/sbin/ioreg";
const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
/** Hex digits kept: 32 bits, unique enough for a fleet, short enough for a runner name. */
const KEEP = 8;

/** `"IOPlatformUUID" = "4A5B6C7D-…"` in `ioreg -rd1 -c IOPlatformExpertDevice` -> the UUID. */
export function parseIoregUuid(text: string): string | undefined {
  return /"IOPlatformUUID"\s*=\s*"([0-9A-Fa-f-]{32,36})"/.exec(text)?.[1];
}

/** The first 8 hex digits of a UUID or machine id, lowercased; undefined when it has too few. */
export function shortMachineId(raw: string): string | undefined {
  const hex = raw.toLowerCase().replace(/[^0-9a-f]/g, "");
  return hex.length >= KEEP && /[1-9a-f]/.test(hex) ? hex.slice(0, KEEP) : undefined;
}

/** This machine's short id and where it came from, or undefined when none can be read. */
export function machineId(source: MachineIdSource = {}): { id: string; from: string } | undefined {
  const platform = source.platform ?? process.platform;
  if (platform === "darwin") {
    const ioreg = source.ioregPath ?? IOREG;
    const r = spawnSync(ioreg, ["-rd1", "-c", "IOPlatformExpertDevice"], { encoding: "utf8", timeout: 10_000 });
    const uuid = r.status === 0 ? parseIoregUuid(r.stdout) : undefined;
    const id = uuid && shortMachineId(uuid);
    return id ? { id, from: "the hardware UUID (ioreg IOPlatformUUID)" } : undefined;
  }
  for (const file of source.machineIdFiles ?? MACHINE_ID_FILES) {
    try {
      const id = shortMachineId(readFileSync(file, "utf8").trim());
      if (id) return { id, from: file };
    } catch {
      // not there: the next one
    }
  }
  return undefined;
}
