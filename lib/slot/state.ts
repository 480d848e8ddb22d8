// The slot's state file, written atomically before each phase acts, so the
// next launch knows what a crash left. Read leniently: a bad file or field is
// reported and defaulted, never a crash. Never holds a secret.
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { z } from "../core/schema/index.ts";
import { writeFileAtomic } from "../core/fs.ts";
import type { Clock } from "../core/wait.ts";

const PHASES = ["idle", "recover", "token", "clone", "boot", "run", "job", "cleanup", "backoff", "done", "failed"] as const;

const isoTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), "not a time");
const name = z.string().min(1);
const ghost = z.object({ id: z.number().int().positive(), name, since: isoTime });
/** A `tart run` an earlier process started: a pid may be reused, so without `pid_start` it is not trusted. */
const started = z.object({ pid: z.number().int().positive(), pid_start: z.string().min(1).optional(), started_at: isoTime, log_offset: z.number().int().nonnegative() });
const nextVm = z.object({ name, image: z.string(), created_at: isoTime, run: started.optional() });
const golden = z.object({ name, image: z.string(), created_at: isoTime });

/** A missing field takes its default silently, a bad one is reported. */
const FIELDS = {
  phase: [z.enum(PHASES), "idle"],
  phase_since: [isoTime, undefined],
  vm: [name, undefined],
  runner_name: [name, undefined],
  runner_id: [z.number().int().positive(), undefined],
  /** Nothing to delete: it completed its job (GitHub removes it) or was already removed. */
  runner_gone: [z.boolean(), undefined],
  /** Runners started in the current VM (retired idle runners are replaced in it). */
  vm_runners: [z.number().int().positive(), undefined],
  job: [z.string(), undefined],
  job_result: [z.string(), undefined],
  /** "pre-cloned", its old name, is read as next-vm. */
  path: [z.enum(["cold", "next-vm", "snapshot"]).or(z.literal("pre-cloned").transform(() => "next-vm" as const)), undefined],
  image: [z.string(), undefined],
  next_vm: [nextVm, undefined],
  /** Recorded before it is made, so a crash mid-way leaves a name to find. */
  golden: [golden, undefined],
  /** Finished VMs, already off, deleted off the next cycle's critical path. */
  dispose: [z.array(name), []],
  /** Runners GitHub still calls busy after their VM is gone. */
  ghosts: [z.array(ghost), []],
  ghosts_checked_at: [isoTime, undefined],
  failures: [z.number().int().nonnegative(), 0],
  backoff_until: [isoTime, undefined],
  last_error: [z.string(), undefined],
  last_failure_kind: [z.string(), undefined],
  last_failure_at: [isoTime, undefined],
  /** The host could not start VMs with fewer than two running (leaked places); cleared by a good cycle. */
  host_degraded_at: [isoTime, undefined],
  jobs_served: [z.number().int().nonnegative(), 0],
  last_job_at: [isoTime, undefined],
  cycle_started_at: [isoTime, undefined],
  swept_at: [isoTime, undefined],
  /** The state was lost or unusable: every launch sweeps until a full sweep has finished. */
  sweep_pending: [z.boolean(), undefined],
  /** When a sweep last saw a second owner's runner (lib/slot/ownership.ts). */
  conflict_seen_at: [isoTime, undefined],
} as const;

type Fields = typeof FIELDS;
export type SlotState = { version: 1; slot: number; updated_at: string } & {
  -readonly [K in keyof Fields]: Fields[K][1] extends undefined ? z.output<Fields[K][0]> | undefined : z.output<Fields[K][0]>;
};
export type Ghost = z.output<typeof ghost>;
export type NextVm = z.output<typeof nextVm>;

/** Every field that cannot be used is named in `problems` and defaulted. */
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
  readonly problems: string[];
  readonly existed: boolean;
  /** False once a write failed (full disk): the state lives in memory only. */
  persisted = true;
  lastWriteError: Error | undefined;
  /** Told of every change, persisted or not. */
  onChange: ((next: Readonly<SlotState>, prev: Readonly<SlotState>) => void) | undefined;

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

  /** Undefined removes a key. False when the write failed (the new state is kept in memory). */
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

  /** Temp files a killed writer left (`slot-N.json.<pid>.tmp`). */
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
