// A read-only, tolerant view of a slot's state file for `status` and `doctor`:
// a field of the wrong type is dropped and named in `problems`, never thrown.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SLOT_PHASES, type SlotPhase } from "./metrics/definitions.ts";

export interface Ghost {
  id: number;
  name: string;
  since?: string;
}

export interface SlotView {
  slot: number;
  phase: SlotPhase | "unknown";
  /** Falls back to updated_at for files without phase_since. */
  phase_since?: string | undefined;
  updated_at?: string | undefined;
  vm?: string | undefined;
  runner_name?: string | undefined;
  runner_id?: number | undefined;
  /** More than 1 when retired idle runners were replaced in the VM. */
  vm_runners?: number | undefined;
  job?: string | undefined;
  job_result?: string | undefined;
  path?: string | undefined;
  image?: string | undefined;
  next_vm?: { name: string; image?: string; created_at?: string } | undefined;
  ghosts: Ghost[];
  failures: number;
  backoff_until?: string | undefined;
  last_error?: string | undefined;
  last_failure_at?: string | undefined;
  host_degraded_at?: string | undefined;
  jobs_served: number;
  last_job_at?: string | undefined;
  cycle_started_at?: string | undefined;
  problems: string[];
}

export type SlotRead = { kind: "missing" } | { kind: "unreadable"; problem: string } | { kind: "ok"; view: SlotView };

export function readSlotView(stateDir: string, slot: number): SlotRead {
  const path = join(stateDir, `slot-${slot}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
    if (err instanceof SyntaxError) return { kind: "unreadable", problem: `${path} is not JSON (${err.message})` };
    return { kind: "unreadable", problem: `${path}: ${(err as Error).message}` };
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { kind: "unreadable", problem: `${path} is not a JSON object` };
  const o = raw as Record<string, unknown>;
  const problems: string[] = [];
  const field = <T>(key: string, want: string, ok: (v: unknown) => v is T): T | undefined => {
    const v = o[key];
    if (v === undefined || v === null || ok(v)) return (v ?? undefined) as T | undefined;
    problems.push(`${key} is not ${want}`);
    return undefined;
  };
  const isString = (v: unknown): v is string => typeof v === "string";
  const str = (key: string) => field(key, "a string", isString);
  const time = (key: string) => field(key, "an ISO time", (v): v is string => isString(v) && !Number.isNaN(Date.parse(v)));
  const count = (key: string) => field(key, "a count", (v): v is number => Number.isInteger(v) && (v as number) >= 0) ?? 0;
  const id = (key: string) => field(key, "a positive integer", (v): v is number => Number.isInteger(v) && (v as number) > 0);

  if (o.slot !== undefined && o.slot !== slot) problems.push(`slot is ${JSON.stringify(o.slot)}, but the file is slot ${slot}'s`);
  const phaseRaw = o.phase;
  let phase: SlotView["phase"] = "unknown";
  if (typeof phaseRaw === "string" && (SLOT_PHASES as readonly string[]).includes(phaseRaw)) phase = phaseRaw as SlotPhase;
  else problems.push(`phase ${JSON.stringify(phaseRaw)} is not one of ${SLOT_PHASES.join(", ")}`);

  const updated_at = time("updated_at");
  const view: SlotView = {
    slot,
    phase,
    phase_since: time("phase_since") ?? updated_at,
    updated_at,
    vm: str("vm"),
    runner_name: str("runner_name"),
    runner_id: id("runner_id"),
    vm_runners: id("vm_runners"),
    job: str("job"),
    job_result: str("job_result"),
    path: str("path"),
    image: str("image"),
    next_vm: nextVm(o.next_vm, problems),
    ghosts: ghosts(o.ghosts, problems),
    failures: count("failures"),
    backoff_until: time("backoff_until"),
    last_error: str("last_error"),
    last_failure_at: time("last_failure_at"),
    host_degraded_at: time("host_degraded_at"),
    jobs_served: count("jobs_served"),
    last_job_at: time("last_job_at"),
    cycle_started_at: time("cycle_started_at"),
    problems,
  };
  for (const k of Object.keys(view) as (keyof SlotView)[]) if (view[k] === undefined) delete view[k];
  return { kind: "ok", view };
}

function nextVm(v: unknown, problems: string[]): SlotView["next_vm"] {
  if (v === undefined || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || typeof o.name !== "string") {
    problems.push("next_vm has no name");
    return undefined;
  }
  return {
    name: o.name,
    ...(typeof o.image === "string" && { image: o.image }),
    ...(typeof o.created_at === "string" && { created_at: o.created_at }),
  };
}

function ghosts(v: unknown, problems: string[]): Ghost[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push("ghosts is not a list");
    return [];
  }
  return v.flatMap((g: unknown) => {
    const o = g as Record<string, unknown>;
    if (typeof o !== "object" || o === null || typeof o.id !== "number" || typeof o.name !== "string") {
      problems.push(`a ghost entry lacks id and name: ${JSON.stringify(g)}`);
      return [];
    }
    return [{ id: o.id, name: o.name, ...(typeof o.since === "string" && { since: o.since }) }];
  });
}
