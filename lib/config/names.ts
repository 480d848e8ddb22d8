// Runner and VM names: <prefix>-<host>-<slot>-<random>. The prefix+host+slot
// part is how a slot recognises what is its own (and never touches the rest).
// The host part is pinned (host.id, or written once to state_dir from the
// machine's hardware id), so a hostname change never orphans a slot's VMs and
// runners, and two Macs that share a hostname do not share names.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";
import { machineId, type MachineIdSource } from "./machine-id.ts";

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

/**
 * The slot's suspended golden VM for one image (snapshot start):
 * `<prefix>-<host>-<slot>-golden-<12 hex of the image>`. `owns` never matches
 * it, so no sweep, recovery or cleanup of job VMs ever takes a golden.
 */
export function goldenName(prefix: string, slot: number, host: string, imageKey: string): string {
  return `${slotPrefix(prefix, slot, host)}golden-${imageKey.slice(0, 12)}`;
}

export function isSlotsGolden(name: string, prefix: string, slot: number, host: string): boolean {
  const p = `${slotPrefix(prefix, slot, host)}golden-`;
  return name.startsWith(p) && /^[0-9a-f]{12}$/.test(name.slice(p.length));
}

/** This slot's names: new ones, and whether a name is one of them. */
export interface SlotNames {
  readonly prefix: string;
  next(): string;
  owns(name: string): boolean;
  /** The golden VM's name for an image key (hex, e.g. a digest's). */
  golden(imageKey: string): string;
  /** Whether a name is one of this slot's goldens (which `owns` never matches). */
  ownsGolden(name: string): boolean;
}

export function slotNames(prefix: string, slot: number, host: string): SlotNames {
  return {
    prefix: slotPrefix(prefix, slot, host),
    next: () => newName(prefix, slot, host),
    owns: (name) => isSlotsOwn(name, prefix, slot, host),
    golden: (imageKey) => goldenName(prefix, slot, host, imageKey),
    ownsGolden: (name) => isSlotsGolden(name, prefix, slot, host),
  };
}

/**
 * The host part of names, read only (doctor, status): host.id when
 * configured, else the id pinned in `<state_dir>/host-id`, else the one the
 * first start would pin.
 */
export function currentHostId(configured: string | undefined, stateDir: string, source?: MachineIdSource): string {
  return configured ?? pinnedHostId(stateDir) ?? defaultHostId(source).id;
}

/**
 * The host part of names: host.id when configured, else the id pinned in
 * `<state_dir>/host-id` (ids pinned by earlier releases, from the hostname,
 * keep working), else a new one pinned there on this first start: from the
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
    // first start on this host
  }
  return undefined;
}

/** The machine's short id; random (and then pinned) on a machine that has none to read. */
function defaultHostId(source?: MachineIdSource): { id: string; from: string } {
  return machineId(source) ?? { id: randomBytes(4).toString("hex"), from: "random (no machine id could be read)" };
}
