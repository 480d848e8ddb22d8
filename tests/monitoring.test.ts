// monitoring/: the Grafana dashboard and the alert rules load, every PromQL
// expression parses (Prometheus' own lezer grammar), and names only metrics
// the code writes or node_exporter's own, listed here.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { parse } from "yaml";
import { METRICS } from "../lib/host/metrics/definitions.ts";

const DIR = join(import.meta.dir, "..", "monitoring");

/** node_exporter's own metrics the dashboard and rules use. */
const NODE_EXPORTER = ["node_filesystem_avail_bytes", "node_textfile_mtime_seconds", "node_textfile_scrape_error"];

const written = new Set(
  Object.entries(METRICS).flatMap(([name, def]) => (def.type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])),
);
const known = new Set([...written, ...NODE_EXPORTER]);

/** Grafana's variables, as a query would see them once substituted. */
function substitute(expr: string): string {
  return expr.replaceAll("$__rate_interval", "5m").replace(/\$\{?\w+\}?/g, ".*");
}

/** The metric names a PromQL expression selects; throws on a syntax error. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let error: number | undefined;
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) error ??= node.from;
      if (node.name === "VectorSelector") {
        const id = node.node.getChild("Identifier");
        if (id) names.push(expr.slice(id.from, id.to));
      }
    },
  });
  if (error !== undefined) throw new Error(`PromQL syntax error at ${error} in: ${expr}`);
  return names;
}

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(DIR, "grafana-dashboard.json"), "utf8")) as { title: string; uid: string; panels: Panel[]; templating: { list: { name: string; query: unknown }[] } };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== "row");
const rules = (parse(readFileSync(join(DIR, "alerts.yml"), "utf8")) as { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { summary: string; description: string } }[] }[] }).groups.flatMap((g) => g.rules);

describe("dashboard", () => {
  test("loads with a title, a uid and panels that each query something", () => {
    expect(dashboard.title).toBe("macos-runner");
    expect(dashboard.uid).toBe("macos-runner");
    expect(panels.length).toBeGreaterThanOrEqual(10);
    for (const p of panels) expect(p.targets?.length, p.title).toBeGreaterThan(0);
  });

  test("every query parses and names only metrics the code writes (or node_exporter's listed ones)", () => {
    const used = new Set<string>();
    for (const p of panels) {
      for (const t of p.targets!) {
        const names = metricNames(substitute(t.expr));
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(known.has(n), `${p.title}: ${n} is not a metric anyone writes`).toBe(true);
          used.add(n);
        }
      }
    }
    for (const v of dashboard.templating.list) if (typeof v.query === "string" && v.query.startsWith("label_values(")) {
      expect(known.has(v.query.slice("label_values(".length).split(",")[0]!.trim())).toBe(true);
    }
    // What the brief's panels are about is really on the dashboard.
    for (const n of ["gha_busy_runners", "gha_idle_runners", "macos_runner_turnaround_seconds_bucket", "macos_runner_phase_duration_seconds_bucket", "gha_completed_jobs_total", "macos_runner_failures_total", "macos_runner_lost_jobs_total", "macos_runner_image_info"]) {
      expect(used.has(n), n).toBe(true);
    }
  });
});

describe("alert rules", () => {
  test("the YAML parses; each rule has a name, a severity and a summary with advice", () => {
    expect(rules.length).toBeGreaterThanOrEqual(8);
    for (const r of rules) {
      expect(r.alert).toMatch(/^MacosRunner[A-Za-z]+$/);
      expect(["info", "warning", "critical"]).toContain(r.labels.severity);
      expect(r.annotations.summary.length).toBeGreaterThan(10);
      expect(r.annotations.description.length).toBeGreaterThan(10);
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  test("every expression parses and names only known metrics", () => {
    for (const r of rules) {
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(known.has(n), `${r.alert}: ${n} is not a metric anyone writes`).toBe(true);
    }
  });

  test("the brief's alerts are there: idle slot while jobs flow, failures in a row, ghosts, disk floor, image age", () => {
    const byMetric = (m: string) => rules.filter((r) => r.expr.includes(m)).map((r) => r.alert);
    expect(byMetric("macos_runner_last_job_timestamp_seconds")).toContain("MacosRunnerSlotNoJobWhileJobsFlow");
    expect(byMetric("macos_runner_consecutive_failures")).toContain("MacosRunnerFailingInARow");
    expect(byMetric("macos_runner_ghost_runners")).toContain("MacosRunnerGhostRunners");
    expect(byMetric("node_filesystem_avail_bytes")).toContain("MacosRunnerDiskLow");
    expect(byMetric("macos_runner_image_pinned_timestamp_seconds")).toContain("MacosRunnerImageOld");
  });

  test("a misspelt metric is caught (the check has teeth)", () => {
    expect(known.has(metricNames("sum(gha_busy_runner)")[0]!)).toBe(false);
    expect(() => metricNames("sum(rate(gha_started_jobs_total[5m])")).toThrow(/syntax error/);
  });
});
