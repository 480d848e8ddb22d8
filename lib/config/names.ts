// Runner and VM names: <prefix>-<host>-<slot>-<random>; a slot touches only its
// own. The host part is pinned, so a hostname change orphans nothing and two
// Macs that share a hostname do not share names.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";

/** GitHub rejects longer runner names (undocumented). */
export const MAX_NAME = 64;
const SUFFIX = 6;

/** The host part is shortened so a full name fits in MAX_NAME. */
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

export interface SlotNames {
  readonly prefix: string;
  next(): string;
  owns(name: string): boolean;
  /** `imageKey` is hex, e.g. a digest's. */
  golden(imageKey: string): string;
  ownsGolden(name: string): boolean;
}

/** `owns` never matches a golden, so no sweep or cleanup of job VMs takes one. */
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

/** Read only (doctor, status): pins nothing. */
export function currentHostId(configured: string | undefined, stateDir: string, source?: MachineIdSource): string {
  return configured ?? pinnedHostId(stateDir) ?? defaultHostId(source).id;
}

/** host.id, else the id pinned in state_dir, else one pinned now from the machine, never the hostname (imaged Macs share it). */
export function hostId(configured: string | undefined, stateDir: string, onPinned?: (id: string, from: string) => void, source?: MachineIdSource): string {
  const known = configured ?? pinnedHostId(stateDir);
  if (known) return known;
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

function defaultHostId(source?: MachineIdSource): { id: string; from: string } {
  return machineId(source) ?? { id: randomBytes(4).toString("hex"), from: "random (no machine id could be read)" };
}

// The Mac's IOPlatformUUID (imaging a disk does not copy it); /etc/machine-id on Linux (simulated hosts).
export interface MachineIdSource {
  platform?: NodeJS.Platform;
  ioregPath?: string;
  machineIdFiles?: readonly string[];
}

const IOREG = "/usr/sbin/ioreg";
const MACHINE_ID_FILES = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
/** 32 bits: unique enough for a fleet, short enough for a runner name. */
const KEEP = 8;

export function parseIoregUuid(text: string): string | undefined {
  return /"IOPlatformUUID"\s*=\s*"([0-9A-Fa-f-]{32,36})"/.exec(text)?.[1];
}

export function shortMachineId(raw: string): string | undefined {
  const hex = raw.toLowerCase().replace(/[^0-9a-f]/g, "");
  return hex.length >= KEEP && /[1-9a-f]/.test(hex) ? hex.slice(0, KEEP) : undefined;
}

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
