// What a slot's metrics remember between `loop` processes (each cycle is a new
// process): every series' value or histogram, plus the moments a later event
// measures from. Kept in <state_dir>/metrics-slot-<N>.json; a missing or
// damaged file starts the series afresh (Prometheus reads that as a counter
// reset), one damaged entry is dropped alone.
import { readFileSync } from "node:fs";
import { METRICS, type MetricName } from "./definitions.ts";

export interface Histogram {
  le: number[];
  /** Cumulative, one per bound in `le`. */
  counts: number[];
  sum: number;
  count: number;
}

/** Series of one metric, keyed by the JSON array of its label values (in definition order). */
export type SeriesMap = Record<string, number | Histogram>;

export interface Marks {
  /** Epoch ms: the runner started (ssh-run began). */
  runner_started_at?: number;
  /** Epoch ms: the runner printed "Listening for Jobs". */
  listening_at?: number;
  job_started_at?: number;
  /** Epoch ms: the last job completed; cleared once the next runner listens (turnaround). */
  job_finished_at?: number;
}

export interface MetricsState {
  version: 1;
  series: Partial<Record<MetricName, SeriesMap>>;
  marks: Marks;
}

export const emptyState = (): MetricsState => ({ version: 1, series: {}, marks: {} });

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function validHistogram(v: unknown, buckets: readonly number[]): v is Histogram {
  const h = v as Histogram;
  return (
    typeof h === "object" && h !== null &&
    Array.isArray(h.le) && h.le.length === buckets.length && h.le.every((b, i) => b === buckets[i]) &&
    Array.isArray(h.counts) && h.counts.length === buckets.length && h.counts.every(isNum) &&
    isNum(h.sum) && isNum(h.count)
  );
}

/**
 * Reads the file. Entries that do not fit today's definitions (a renamed
 * metric, other buckets, a wrong type) are dropped and named in `dropped`.
 */
export function loadState(path: string): { state: MetricsState; problem?: string | undefined; dropped: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: emptyState(), dropped: [], problem: code === "ENOENT" ? undefined : `${path} unreadable (${(err as Error).message}); starting the series afresh` };
  }
  const doc = raw as Partial<MetricsState>;
  if (typeof doc !== "object" || doc === null || doc.version !== 1 || typeof doc.series !== "object" || doc.series === null) {
    return { state: emptyState(), dropped: [], problem: `${path} is not a version 1 metrics file; starting the series afresh` };
  }
  const state = emptyState();
  const dropped: string[] = [];
  for (const [name, series] of Object.entries(doc.series)) {
    const def = (METRICS as Record<string, (typeof METRICS)[MetricName]>)[name];
    if (!def || typeof series !== "object" || series === null) {
      dropped.push(name);
      continue;
    }
    const kept: SeriesMap = {};
    for (const [key, value] of Object.entries(series as Record<string, unknown>)) {
      let labels: unknown;
      try {
        labels = JSON.parse(key);
      } catch {
        labels = undefined;
      }
      const keyOk = Array.isArray(labels) && labels.length === def.labels.length && labels.every((l) => typeof l === "string");
      const valueOk = def.type === "histogram" ? validHistogram(value, def.buckets) : isNum(value);
      if (keyOk && valueOk) kept[key] = value as number | Histogram;
      else dropped.push(`${name}${key}`);
    }
    state.series[name as MetricName] = kept;
  }
  const marks = (doc.marks ?? {}) as Record<string, unknown>;
  for (const k of ["runner_started_at", "listening_at", "job_started_at", "job_finished_at"] as const) {
    if (isNum(marks[k])) state.marks[k] = marks[k];
  }
  return { state, dropped };
}
