// Timings and faults of the simulated tart, from the JSON file named by
// $SIM_TART_CONFIG, re-read on every invocation (format: sim/tart/README.md).
// Fault consumption is counted in `<file>.state`, which resets whenever the
// file's content changes.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { withFileLock } from "./filelock.ts";

export type FaultKind = "clone_disk_full" | "start_failure" | "no_ip" | "crash";

export interface Fault {
  kind: FaultKind;
  /** How many VMs (clones for clone faults) it hits; default 1. */
  count?: number;
  /** Only VMs with this name; `*` matches any run of characters. Default: any VM. */
  vm?: string;
  /** crash: milliseconds after boot. */
  after_ms?: number;
}

export interface SimTartSettings {
  clone_ms: number;
  boot_ms: number;
  stop_ms: number;
  /** Extra time per pulled blob, to make pulls take a while. */
  pull_ms: number;
  ssh_port: number;
  /** DHCP lease lifetime (macOS default 86400 s). */
  lease_s: number;
  faults: Fault[];
  /** Free-form; bump it to re-arm identical faults. */
  rev?: number;
}

export const DEFAULT_SETTINGS: SimTartSettings = {
  clone_ms: 0,
  boot_ms: 500,
  stop_ms: 0,
  pull_ms: 0,
  ssh_port: 22,
  lease_s: 86400,
  faults: [],
};

function readRaw(): string | undefined {
  const path = process.env.SIM_TART_CONFIG;
  if (!path) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`SIM_TART_CONFIG ${path}: ${(err as Error).message}`);
  }
}

export function loadSettings(): SimTartSettings {
  const raw = readRaw();
  if (raw === undefined) return DEFAULT_SETTINGS;
  let parsed: Partial<SimTartSettings>;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`SIM_TART_CONFIG ${process.env.SIM_TART_CONFIG}: invalid JSON: ${(err as Error).message}`);
  }
  return { ...DEFAULT_SETTINGS, ...parsed, faults: parsed.faults ?? [] };
}

function matches(pattern: string | undefined, name: string): boolean {
  if (pattern === undefined) return true;
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

interface FaultState {
  hash: string;
  used: number[];
}

/** Consumes and returns the first armed fault of this kind that targets `vm`. */
export function takeFault(kind: FaultKind, vm: string): Fault | undefined {
  const raw = readRaw();
  if (raw === undefined) return undefined;
  const settings = loadSettings();
  if (!settings.faults.some((f) => f.kind === kind && matches(f.vm, vm))) return undefined;
  const statePath = `${process.env.SIM_TART_CONFIG}.state`;
  const hash = createHash("sha256").update(raw).digest("hex");
  return withFileLock(`${statePath}.lock`, () => {
    let state: FaultState = { hash, used: [] };
    try {
      const saved = JSON.parse(readFileSync(statePath, "utf8")) as FaultState;
      if (saved.hash === hash) state = saved;
    } catch {}
    const index = settings.faults.findIndex(
      (f, i) => f.kind === kind && matches(f.vm, vm) && (state.used[i] ?? 0) < (f.count ?? 1),
    );
    if (index < 0) return undefined;
    state.used[index] = (state.used[index] ?? 0) + 1;
    writeFileSync(statePath, JSON.stringify(state));
    return settings.faults[index];
  });
}
