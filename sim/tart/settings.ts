// Settings of the simulated tart, from the JSON file named by
// $SIM_TART_CONFIG, re-read on every invocation (format: sim/tart/README.md):
// a timing profile, a scale factor, explicit times that override the
// profile, and the rest (port, lease, faults).
import { readFileSync } from "node:fs";
import { PROFILE_NAMES, PROFILES, TIMING_KEYS, type ProfileName, type Timings } from "./profiles.ts";

export type FaultKind = "clone_disk_full" | "start_failure" | "no_ip" | "crash" | "restore_failure" | "restore_cold" | "clock_stuck" | "ssh_drop_runner";

export interface Fault {
  kind: FaultKind;
  /** How many VMs (clones for clone faults) it hits; default 1. */
  count?: number;
  /** Only VMs with this name; `*` matches any run of characters. Default: any VM. */
  vm?: string;
  /** crash: milliseconds after the guest's sshd answers. */
  after_ms?: number;
}

export interface SimTartSettings extends Timings {
  profile: ProfileName;
  /** Multiplies every time of Timings, explicit ones included. */
  scale: number;
  /**
   * How long the processes of a powered-off guest stay frozen (sockets open,
   * nothing answering) before they are killed and their sockets close. It
   * stands for "never" and is not scaled.
   */
  dead_peer_ms: number;
  ssh_port: number;
  /**
   * macOS Local Network privacy for our binary and what it starts: "withheld"
   * (a LaunchAgent nobody clicked Allow for; the default) or "granted".
   */
  local_network: "withheld" | "granted";
  /**
   * How long a `tart exec` waits for the guest agent before it fails (tart's
   * gRPC connection pool: 30 s); not scaled.
   */
  exec_connect_timeout_ms: number;
  /** DHCP lease lifetime (macOS default 86400 s); not scaled. */
  lease_s: number;
  /**
   * VM places held by no process (macOS 26.3's leak): with two, no VM starts
   * whatever runs. Removing the setting is the host's reboot.
   */
  leaked_places: number;
  /** The bootpd-format lease file; default $TART_HOME/sim/dhcpd_leases. */
  leases_file?: string;
  faults: Fault[];
  /** Extra variables of every guest process: the fake runner's hooks (SIM_RUNNER_*, sim/PROTOCOL.md). */
  runner_env: Record<string, string>;
  /** What `tart --version` prints: set an old one to see it refused. */
  version: string;
  /** Free-form; bump it to re-arm identical faults. */
  rev?: number;
}

/** What the file holds: any subset of the settings. */
export type SimTartConfig = Partial<SimTartSettings>;

/** A change to the settings: a key set to undefined goes back to its default. */
export type SimTartPatch = { [K in keyof SimTartConfig]?: SimTartConfig[K] | undefined };

/** `config` changed by `patch`, with the keys the patch undefines dropped, and `rev` bumped. */
export function patchSettings(config: SimTartConfig, patch: SimTartPatch): SimTartConfig {
  const out: Record<string, unknown> = { ...config };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  // Every key came from a SimTartConfig or a defined value of a SimTartPatch.
  return { ...(out as SimTartConfig), rev: (config.rev ?? 0) + 1 };
}

const OTHER_DEFAULTS = { profile: "fast", scale: 1, dead_peer_ms: 30_000, exec_connect_timeout_ms: 30_000, local_network: "withheld", ssh_port: 22, lease_s: 86_400, leaked_places: 0, faults: [], runner_env: {}, version: "2.35.0" } as const;

/** The profile's times, overridden by explicit ones, all multiplied by scale. */
export function resolveSettings(config: SimTartConfig): SimTartSettings {
  const profile = config.profile ?? OTHER_DEFAULTS.profile;
  if (!(PROFILE_NAMES as readonly string[]).includes(profile)) {
    throw new Error(`unknown profile '${profile}' (one of ${PROFILE_NAMES.join(", ")})`);
  }
  const scale = config.scale ?? OTHER_DEFAULTS.scale;
  if (!(typeof scale === "number" && scale >= 0)) throw new Error(`scale must be a number >= 0, got ${JSON.stringify(scale)}`);
  const runnerEnv = config.runner_env ?? {};
  const badEnv = Object.entries(runnerEnv).find(([k, v]) => !/^SIM_RUNNER_[A-Z0-9_]+$/.test(k) || typeof v !== "string");
  if (badEnv) throw new Error(`runner_env: ${JSON.stringify(badEnv[0])} must be a SIM_RUNNER_* name with a string value, got ${JSON.stringify(badEnv[1])}`);
  const times = { ...PROFILES[profile] };
  for (const key of TIMING_KEYS) times[key] = Math.round((config[key] ?? times[key]) * scale);
  return { ...OTHER_DEFAULTS, ...config, ...times, profile, scale, faults: config.faults ?? [], runner_env: runnerEnv };
}

/** The raw file content, or undefined when SIM_TART_CONFIG is unset. */
export function readConfigText(): string | undefined {
  const path = process.env.SIM_TART_CONFIG;
  if (!path) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`SIM_TART_CONFIG ${path}: ${(err as Error).message}`);
  }
}

export function loadSettings(): SimTartSettings {
  const raw = readConfigText();
  if (raw === undefined) return resolveSettings({});
  let parsed: SimTartConfig;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new Error(`SIM_TART_CONFIG ${process.env.SIM_TART_CONFIG}: invalid JSON: ${(err as Error).message}`);
  }
  try {
    return resolveSettings(parsed);
  } catch (err) {
    throw new Error(`SIM_TART_CONFIG ${process.env.SIM_TART_CONFIG}: ${(err as Error).message}`);
  }
}
