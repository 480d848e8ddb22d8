// A slot's Prometheus metrics for node_exporter's textfile collector. `loop` is a
// new process every cycle, so the series live in a state file between processes.
// Without `metrics:` every call does nothing; a failed write is logged once, never thrown.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../../config/index.ts";
import { writeFileAtomic } from "../../core/fs.ts";
import { createLogger, type Logger } from "../../core/log.ts";
import { z } from "../../core/schema/index.ts";
import { FAILURE_REASONS, METRICS, SLOT_PHASES, STEPS, type Definition, type FailureReason, type MetricName, type MetricType, type SlotPhase, type Step } from "./definitions.ts";
import { currentHostId } from "../../config/names.ts";

export type StartPath = "cold" | "next-vm" | "snapshot";

/** pinned_at: ISO time. */
type ImageInfo = { image_digest?: string | undefined; runner_version?: string; path?: StartPath; pinned_at?: string };

export interface MetricsOptions {
  config: Pick<Config, "metrics" | "host">;
  slot: number;
  log?: Logger;
  now?: () => number;
}

// Anything else the runner prints as a result is "Unknown".
const JOB_RESULT = /^[A-Za-z]{1,32}$/;
const VERSION = /^[0-9A-Za-z.+-]{1,64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class SlotMetrics {
  private state: MetricsState = emptyState();
  /** A new process writes at its first flush even without changes: the .prom file may be gone. */
  private dirty = true;
  private warned = false;
  private readonly now: () => number;
  private readonly log: Logger;
  /** The host id, not the hostname, which Macs imaged alike share. */
  private readonly host: string;
  /** Undefined when metrics are off. */
  private readonly files?: { prom: string; state: string; dir: string };

  private constructor(private readonly o: MetricsOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log ?? createLogger({ fields: { slot: o.slot } });
    this.host = currentHostId(o.config.host.id, o.config.host.stateDir);
    const dir = o.config.metrics?.textfileDir;
    if (dir) this.files = { dir, prom: join(dir, `macos_runner_slot_${o.slot}.prom`), state: join(o.config.host.stateDir, `metrics-slot-${o.slot}.json`) };
  }

  static open(o: MetricsOptions): SlotMetrics {
    const m = new SlotMetrics(o);
    if (!m.files) return m;
    const { state, problem, dropped } = loadState(m.files.state);
    m.state = state;
    if (problem) m.log.warn("metrics.state_reset", problem);
    if (dropped.length > 0) m.log.warn("metrics.state_dropped", `dropped metric series that no longer fit: ${dropped.join(", ")}`);
    return m;
  }

  get enabled(): boolean {
    return this.files !== undefined;
  }

  /** Written at once. */
  phase(phase: SlotPhase): void {
    for (const p of SLOT_PHASES) this.set("macos_runner_slot_phase", [p], p === phase ? 1 : 0);
    this.set("macos_runner_phase_started_timestamp_seconds", [], this.now() / 1000);
    this.set("gha_busy_runners", [], phase === "job" ? 1 : 0);
    if (phase !== "run") this.set("gha_idle_runners", [], 0);
    if (phase === "run") this.state.marks.runner_started_at = this.now();
    this.flush();
  }

  observe(step: Step, seconds: number): void {
    if (!STEPS.includes(step) || !Number.isFinite(seconds) || seconds < 0) return;
    this.histogram("macos_runner_phase_duration_seconds", [step], seconds);
  }

  runnerListening(): void {
    const now = this.now();
    const { marks } = this.state;
    if (marks.runner_started_at !== undefined) this.observe("runner_to_listening", (now - marks.runner_started_at) / 1000);
    if (marks.job_finished_at !== undefined) this.histogram("macos_runner_turnaround_seconds", [], (now - marks.job_finished_at) / 1000);
    marks.listening_at = now;
    delete marks.job_finished_at;
    this.set("gha_idle_runners", [], 1);
    this.set("gha_busy_runners", [], 0);
    this.flush();
  }

  jobStarted(): void {
    const now = this.now();
    const { marks } = this.state;
    this.inc("gha_started_jobs_total", []);
    if (marks.listening_at !== undefined) this.histogram("macos_runner_job_wait_seconds", [], (now - marks.listening_at) / 1000);
    marks.job_started_at = now;
    delete marks.listening_at;
    this.phase("job");
  }

  jobCompleted(result: string): void {
    const now = this.now();
    const jobResult = JOB_RESULT.test(result) ? result : "Unknown";
    const { marks } = this.state;
    this.inc("gha_completed_jobs_total", [jobResult]);
    if (marks.job_started_at !== undefined) this.histogram("gha_job_execution_duration_seconds", [jobResult], (now - marks.job_started_at) / 1000);
    this.set("macos_runner_last_job_timestamp_seconds", [], now / 1000);
    if (jobResult === "Succeeded") this.set("macos_runner_last_success_timestamp_seconds", [], now / 1000);
    delete marks.job_started_at;
    marks.job_finished_at = now;
    this.set("gha_busy_runners", [], 0);
    this.flush();
  }

  failure(phase: SlotPhase, reason: FailureReason): void {
    this.inc("macos_runner_failures_total", [SLOT_PHASES.includes(phase) ? phase : "failed", FAILURE_REASONS.includes(reason) ? reason : "other"]);
  }

  lostJob(): void {
    this.inc("macos_runner_lost_jobs_total", []);
    delete this.state.marks.job_started_at;
  }

  runnerReplaced(): void {
    this.inc("macos_runner_runners_replaced_total", []);
    this.flush();
  }

  ghosts(count: number): void {
    this.set("macos_runner_ghost_runners", [], Math.max(0, Math.floor(count)));
  }

  /** `until` undefined: not backing off. */
  backoff(until: Date | undefined, failures: number): void {
    this.set("macos_runner_consecutive_failures", [], Math.max(0, Math.floor(failures)));
    this.set("macos_runner_backoff_until_timestamp_seconds", [], until ? until.getTime() / 1000 : 0);
  }

  hostDegraded(degraded: boolean): void {
    this.set("macos_runner_host_degraded", [], degraded ? 1 : 0);
  }

  info(i: ImageInfo): void {
    const digest = i.image_digest && DIGEST.test(i.image_digest) ? i.image_digest : "unknown";
    this.state.series.macos_runner_image_info = {};
    this.set("macos_runner_image_info", [digest, i.path ?? "cold"], 1);
    this.state.series.macos_runner_runner_version_info = {};
    if (i.runner_version && VERSION.test(i.runner_version)) this.set("macos_runner_runner_version_info", [i.runner_version], 1);
    const pinned = i.pinned_at ? Date.parse(i.pinned_at) : NaN;
    if (Number.isFinite(pinned)) this.set("macos_runner_image_pinned_timestamp_seconds", [], pinned / 1000);
    else delete this.state.series.macos_runner_image_pinned_timestamp_seconds;
  }

  render(): string {
    const base = { host: this.host, slot: String(this.o.slot) };
    return render((Object.keys(METRICS) as MetricName[]).map((name) => {
      const def: Definition = METRICS[name];
      const entries = Object.entries(this.state.series[name] ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const samples = entries.map(([key, v]) => {
        const labels = { ...base, ...Object.fromEntries(def.labels.map((l, i) => [l, (JSON.parse(key) as string[])[i]!])) };
        return typeof v === "number" ? { labels, value: v } : { labels, ...v };
      });
      return { name, help: def.help, type: def.type, samples } as Family;
    }));
  }

  /** Never throws. */
  flush(): void {
    if (!this.files || !this.dirty) return;
    try {
      mkdirSync(dirname(this.files.state), { recursive: true, mode: 0o700 });
      // No fsync: a file lost in a power cut only restarts the counters.
      writeFileAtomic(this.files.state, `${JSON.stringify(this.state)}\n`, 0o600, { sync: false });
      mkdirSync(this.files.dir, { recursive: true });
      writeFileAtomic(this.files.prom, this.render(), 0o644, { sync: false });
      this.dirty = false;
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      this.log.warn("metrics.write_failed", `could not write metrics (${(err as Error).message}); the slot goes on without them and retries at the next update`, { error: err });
    }
  }

  private set(name: MetricName, labels: string[], value: number): void {
    (this.state.series[name] ??= {})[JSON.stringify(labels)] = value;
    this.dirty = true;
  }

  private inc(name: MetricName, labels: string[]): void {
    const series = (this.state.series[name] ??= {});
    const key = JSON.stringify(labels);
    series[key] = ((series[key] as number | undefined) ?? 0) + 1;
    this.dirty = true;
  }

  private histogram(name: MetricName, labels: string[], value: number): void {
    const buckets = (METRICS[name] as { buckets?: readonly number[] }).buckets!;
    const series = (this.state.series[name] ??= {});
    const key = JSON.stringify(labels);
    const h = (series[key] ??= { le: [...buckets], counts: buckets.map(() => 0), sum: 0, count: 0 }) as Histogram;
    buckets.forEach((bound, i) => {
      if (value <= bound) h.counts[i]! += 1;
    });
    h.sum += value;
    h.count += 1;
    this.dirty = true;
  }
}

// Prometheus text exposition format 0.0.4.
type Labels = Record<string, string>;

type Family = { name: string; help: string } & (
  | { type: Exclude<MetricType, "histogram">; samples: { labels: Labels; value: number }[] }
  | { type: "histogram"; samples: (Histogram & { labels: Labels })[] }
);

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const formatValue = (v: number): string => (Number.isNaN(v) ? "NaN" : v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v));

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  for (const [k] of entries) if (!LABEL.test(k) || k.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(k)}`);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function line(name: string, labels: Labels, value: number): string {
  return `${name}${labelText(labels)} ${formatValue(value)}`;
}

/** A family without samples is left out. */
export function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (f.samples.length === 0) continue;
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type !== "histogram") {
      for (const s of f.samples) out.push(line(f.name, s.labels, s.value));
      continue;
    }
    for (const h of f.samples) {
      h.le.forEach((bound, i) => out.push(line(`${f.name}_bucket`, { ...h.labels, le: formatValue(bound) }, h.counts[i] ?? 0)));
      out.push(line(`${f.name}_bucket`, { ...h.labels, le: "+Inf" }, h.count));
      out.push(line(`${f.name}_sum`, h.labels, h.sum), line(`${f.name}_count`, h.labels, h.count));
    }
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`;
}

// A missing or damaged state file starts the series afresh (Prometheus reads a
// counter reset); one damaged entry is dropped alone.
const finite = z.number(); // zod refuses NaN and Infinity

const histogramOf = (buckets: readonly number[]) =>
  z.object({
    /** Upper bounds, ascending, without +Inf. */
    le: z.array(z.number()).refine((le) => le.length === buckets.length && le.every((b, i) => b === buckets[i])),
    /** Cumulative, one per bound. */
    counts: z.array(finite).length(buckets.length),
    sum: finite,
    count: finite,
  });

type Histogram = z.output<ReturnType<typeof histogramOf>>;

/** Keyed by the JSON array of its label values. */
type SeriesMap = Record<string, number | Histogram>;

/** Epoch ms; job_finished_at is cleared once the next runner listens (turnaround). */
const MARKS = ["runner_started_at", "listening_at", "job_started_at", "job_finished_at"] as const;

interface MetricsState {
  version: 1;
  series: Partial<Record<MetricName, SeriesMap>>;
  marks: Partial<Record<(typeof MARKS)[number], number>>;
}

const emptyState = (): MetricsState => ({ version: 1, series: {}, marks: {} });

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Entries that do not fit today's definitions (a renamed metric, other buckets) are dropped. */
function loadState(path: string): { state: MetricsState; problem?: string | undefined; dropped: string[] } {
  let doc: Partial<MetricsState> | null;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: emptyState(), dropped: [], problem: code === "ENOENT" ? undefined : `${path} unreadable (${(err as Error).message}); starting the series afresh` };
  }
  if (doc?.version !== 1 || typeof doc.series !== "object" || doc.series === null) {
    return { state: emptyState(), dropped: [], problem: `${path} is not a version 1 metrics file; starting the series afresh` };
  }
  const state = emptyState();
  const dropped: string[] = [];
  for (const [name, series] of Object.entries(doc.series)) {
    const def = (METRICS as Record<string, Definition>)[name];
    if (!def || typeof series !== "object" || series === null) {
      dropped.push(name);
      continue;
    }
    const key = z.array(z.string()).length(def.labels.length);
    const value = def.type === "histogram" ? histogramOf(def.buckets!) : finite;
    state.series[name as MetricName] = Object.fromEntries(Object.entries(series).filter(([k, v]) => {
      const fits = key.safeParse(parsed(k)).success && value.safeParse(v).success;
      if (!fits) dropped.push(`${name}${k}`);
      return fits;
    }));
  }
  const marks = (doc.marks ?? {}) as Record<string, unknown>;
  for (const k of MARKS) if (finite.safeParse(marks[k]).success) state.marks[k] = marks[k] as number;
  return { state, dropped };
}
