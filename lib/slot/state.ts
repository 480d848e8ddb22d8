// A slot's durable memory: the state file, written atomically before each
// phase acts, so the slot's next launch knows exactly what a crash left
// behind. Read leniently: a missing, empty or garbage file (or field) is
// reported and replaced by its default, never a crash. Never holds a secret.
// When the disk is full the state lives on in memory: the cycle is told it
// was not persisted, cleans up from what it knows, and backs off.
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { z } from "../core/schema/index.ts";
import { writeFileAtomic } from "../core/fs.ts";
import type { Clock } from "../core/wait.ts";

export const PHASES = ["idle", "recover", "token", "clone", "boot", "run", "job", "cleanup", "backoff", "done", "failed"] as const;
export type Phase = (typeof PHASES)[number];

const isoTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), "not a time");
const name = z.string().min(1);
const ghost = z.object({ id: z.number().int().positive(), name, since: isoTime });
/**
 * A VM whose `tart run` an earlier process started (the next VM, started
 * ahead by the previous cycle as it ended). `pid` with `pid_start` (the
 * process's start time, lib/core/process-identity.ts) is the identity of that
 * process: a pid alone may have been reused since. Without `pid_start` it is
 * not trusted.
 */
const started = z.object({ pid: z.number().int().positive(), pid_start: z.string().min(1).optional(), started_at: isoTime, log_offset: z.number().int().nonnegative() });
const nextVm = z.object({ name, image: z.string(), created_at: isoTime, run: started.optional() });
const golden = z.object({ name, image: z.string(), created_at: isoTime });

/** Field schemas with their defaults; a missing field takes its default silently, a bad one is reported. */
const FIELDS = {
  phase: [z.enum(PHASES), "idle"],
  phase_since: [isoTime, undefined],
  vm: [name, undefined],
  runner_name: [name, undefined],
  runner_id: [z.number().int().positive(), undefined],
  /** The runner completed its job (GitHub removes it) or was already removed: nothing to delete. */
  runner_gone: [z.boolean(), undefined],
  /** Runners started in the current VM: 1 on a fresh VM, one more per retired idle runner replaced in it. */
  vm_runners: [z.number().int().positive(), undefined],
  job: [z.string(), undefined],
  job_result: [z.string(), undefined],
  /** How the cycle's VM started: cold (cloned and booted), next-vm (made ahead), snapshot (restored); "pre-cloned", its old name, is read as next-vm. */
  path: [z.enum(["cold", "next-vm", "snapshot"]).or(z.literal("pre-cloned").transform(() => "next-vm" as const)), undefined],
  /** The image the cycle's VM was cloned from (a digest reference when pinned). */
  image: [z.string(), undefined],
  /** The next VM: cloned while the previous job ran, maybe booted ahead (`run`); lib/slot/next-vm.ts. */
  next_vm: [nextVm, undefined],
  /**
   * The slot's suspended golden VM (vm.start: snapshot): its name, the image it
   * was cloned from, and when it was made. Recorded before it is made, so a
   * crash mid-way leaves a name to find; only a suspended one is used.
   */
  golden: [golden, undefined],
  /** Finished VMs, already forced off, still to delete (off the next cycle's critical path). */
  dispose: [z.array(name), []],
  /** Runners GitHub still calls busy after their VM is gone; deleted by later cycles. */
  ghosts: [z.array(ghost), []],
  ghosts_checked_at: [isoTime, undefined],
  failures: [z.number().int().nonnegative(), 0],
  backoff_until: [isoTime, undefined],
  last_error: [z.string(), undefined],
  last_failure_kind: [z.string(), undefined],
  last_failure_at: [isoTime, undefined],
  /**
   * When the slot last found the host unable to start VMs although fewer than
   * two run (macOS leaked VM places; a reboot frees them). Cleared by a good cycle.
   */
  host_degraded_at: [isoTime, undefined],
  jobs_served: [z.number().int().nonnegative(), 0],
  last_job_at: [isoTime, undefined],
  cycle_started_at: [isoTime, undefined],
  swept_at: [isoTime, undefined],
  /**
   * The state was lost or unusable, so VMs and runners of this slot may be
   * unrecorded: every launch sweeps until a full sweep (GitHub and tart) has
   * finished. Set before that sweep, so one that fails (GitHub down) or is
   * killed is made again by the next launch.
   */
  sweep_pending: [z.boolean(), undefined],
  /** When a sweep last saw an online runner with this slot's name that is not this host's (lib/slot/ownership.ts). */
  conflict_seen_at: [isoTime, undefined],
} as const;

type Fields = typeof FIELDS;
export type SlotState = { version: 1; slot: number; updated_at: string } & {
  -readonly [K in keyof Fields]: Fields[K][1] extends undefined ? z.output<Fields[K][0]> | undefined : z.output<Fields[K][0]>;
};
export type Ghost = z.output<typeof ghost>;
export type NextVm = z.output<typeof nextVm>;

/** Parses a state file's text (`now`, epoch ms, is its updated_at); every field that cannot be used is named in `problems` and defaulted. */
export function parseSlotState(text: string | undefined, slot: number, now: number): { state: SlotState; problems: string[] } {
  const problems: string[] = [];
  let raw: Record<string, unknown> = {};
  if (text !== undefined) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) raw = parsed as Record<string, unknown>;
      else problems.push("the file does not hold a JSON object");
    } catch (err) {
      problems.push(`the file is not JSON (${(err as Error).message})`);
    }
  }
  const state: Record<string, unknown> = { version: 1, slot, updated_at: new Date(now).toISOString() };
  for (const [key, [schema, fallback]] of Object.entries(FIELDS)) {
    const value = raw[key];
    if (value === undefined) {
      state[key] = fallback;
      continue;
    }
    const r = (schema as z.ZodType).safeParse(value);
    if (r.success) state[key] = r.data;
    else {
      problems.push(`${key}: ${r.error.issues[0]?.message ?? "invalid"} (${JSON.stringify(value).slice(0, 80)})`);
      state[key] = fallback;
    }
  }
  return { state: state as SlotState, problems };
}

export type StatePatch = Partial<Omit<SlotState, "version" | "slot" | "updated_at">>;

export class SlotStore {
  readonly path: string;
  private state: SlotState;
  /** Problems found in the file when it was read. */
  readonly problems: string[];
  /** Whether the state file existed when the store was opened (a first launch has none). */
  readonly existed: boolean;
  /** False once a write failed (full or read-only disk): the state lives in memory only. */
  persisted = true;
  lastWriteError: Error | undefined;
  /** Told of every change (persisted or not), e.g. to keep the metrics' phase gauges in step. */
  onChange: ((next: Readonly<SlotState>, prev: Readonly<SlotState>) => void) | undefined;

  /** `clock` stamps updated_at and phase_since. */
  constructor(
    readonly stateDir: string,
    readonly slot: number,
    private readonly clock: Pick<Clock, "now">,
  ) {
    this.path = join(stateDir, `slot-${slot}.json`);
    let text: string | undefined;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    this.existed = text !== undefined;
    const { state, problems } = parseSlotState(text, slot, clock.now());
    this.state = state;
    this.problems = problems;
    if (text !== undefined && text.trim() === "") this.problems.splice(0, this.problems.length, "the file is empty");
  }

  get current(): Readonly<SlotState> {
    return this.state;
  }

  /**
   * Merges the patch (undefined removes a key; a new phase restarts
   * phase_since) and writes the file atomically. Returns false when the
   * write failed: the new state is kept in memory and `persisted` is false.
   */
  write(patch: StatePatch): boolean {
    const now = new Date(this.clock.now()).toISOString();
    const next = { ...this.state, ...patch, version: 1, slot: this.slot, updated_at: now } as SlotState;
    if (patch.phase !== undefined && patch.phase !== this.state.phase) next.phase_since = now;
    const prev = this.state;
    this.state = next;
    this.onChange?.(next, prev);
    const onDisk = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined));
    try {
      writeFileAtomic(this.path, `${JSON.stringify(onDisk, null, 2)}\n`, 0o600);
      this.persisted = true;
      return true;
    } catch (err) {
      this.persisted = false;
      this.lastWriteError = err as Error;
      return false;
    }
  }

  /** Removes temp files a killed writer left (`slot-N.json.<pid>.tmp`). */
  removeStrayTempFiles(): number {
    let removed = 0;
    for (const f of readdirSync(this.stateDir)) {
      if (f.startsWith(`slot-${this.slot}.json.`) && f.endsWith(".tmp")) {
        try {
          unlinkSync(join(this.stateDir, f));
          removed++;
        } catch {
          // another process's file vanished first
        }
      }
    }
    return removed;
  }
}
