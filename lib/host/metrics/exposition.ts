// Prometheus text exposition format 0.0.4 (what node_exporter's textfile
// collector reads): `# HELP`, `# TYPE`, then one line per sample. Histograms
// are written as cumulative `_bucket{le=...}` lines ending in +Inf, then
// `_sum` and `_count`.

export type MetricType = "counter" | "gauge" | "histogram";

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Upper bounds, ascending, without +Inf. */
  le: readonly number[];
  /** Cumulative counts, one per bound. */
  counts: readonly number[];
  sum: number;
  count: number;
}

export type Family =
  | { name: string; help: string; type: Exclude<MetricType, "histogram">; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; samples: HistogramSample[] };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

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

/** The families as one exposition text; a family without samples is left out. */
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
