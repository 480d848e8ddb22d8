// The machine's own identity, for the default host id: the Mac's hardware
// UUID (IOPlatformUUID, which imaging or cloning a disk does not copy), or
// systemd's /etc/machine-id elsewhere (the simulated hosts run on Linux).
// Never the hostname: Macs imaged the same way share one.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface MachineIdSource {
  platform?: NodeJS.Platform;
  /** macOS: the ioreg binary (absolute, so the agents' PATH cannot replace it). */
  ioregPath?: string;
  /** Elsewhere: the files holding the machine id, first readable one wins. */
  machineIdFiles?: readonly string[];
}

export const IOREG = "/usr/sbin/ioreg";
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
