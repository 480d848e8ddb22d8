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

type Reader<T> = (v: unknown, key: string, problems: string[]) => T;

function checked<T>(want: string, ok: (v: unknown) => v is T): Reader<T | undefined> {
  return (v, key, problems) => {
    if (v === undefined || v === null || ok(v)) return (v ?? undefined) as T | undefined;
    problems.push(`${key} is not ${want}`);
    return undefined;
  };
}

const isString = (v: unknown): v is string => typeof v === "string";
const str = checked("a string", isString);
const time = checked("an ISO time", (v): v is string => isString(v) && !Number.isNaN(Date.parse(v)));
const id = checked("a positive integer", (v): v is number => Number.isInteger(v) && (v as number) > 0);
const countOf = checked("a count", (v): v is number => Number.isInteger(v) && (v as number) >= 0);
const count: Reader<number> = (v, key, problems) => countOf(v, key, problems) ?? 0;

const nextVm: Reader<{ name: string; image?: string; created_at?: string } | undefined> = (v, _key, problems) => {
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
};

const ghosts: Reader<Ghost[]> = (v, _key, problems) => {
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
};

/** In the order `status --json` shows them. vm_runners is more than 1 when retired idle runners were replaced in the VM. */
const FIELDS = {
  phase_since: time, updated_at: time, vm: str, runner_name: str, runner_id: id, vm_runners: id, job: str, job_result: str, path: str, image: str,
  next_vm: nextVm, ghosts, failures: count, backoff_until: time, last_error: str, last_failure_at: time, host_degraded_at: time,
  jobs_served: count, last_job_at: time, cycle_started_at: time,
};

export type SlotView = { slot: number; phase: SlotPhase | "unknown" } & { [K in keyof typeof FIELDS]: ReturnType<(typeof FIELDS)[K]> } & { problems: string[] };

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
  if (o.slot !== undefined && o.slot !== slot) problems.push(`slot is ${JSON.stringify(o.slot)}, but the file is slot ${slot}'s`);
  let phase: SlotView["phase"] = "unknown";
  if (typeof o.phase === "string" && (SLOT_PHASES as readonly string[]).includes(o.phase)) phase = o.phase as SlotPhase;
  else problems.push(`phase ${JSON.stringify(o.phase)} is not one of ${SLOT_PHASES.join(", ")}`);
  const fields = Object.fromEntries(Object.entries(FIELDS).map(([key, read]) => [key, read(o[key], key, problems)]));
  const view = { slot, phase, ...fields, problems } as SlotView;
  // Files without phase_since.
  view.phase_since ??= view.updated_at;
  for (const k of Object.keys(view) as (keyof SlotView)[]) if (view[k] === undefined) delete view[k];
  return { kind: "ok", view };
}

/** The slots 1..`slots` whose state files read. */
export const slotViews = (stateDir: string, slots: number): SlotView[] =>
  Array.from({ length: slots }, (_, i) => readSlotView(stateDir, i + 1)).flatMap((r) => (r.kind === "ok" ? [r.view] : []));
