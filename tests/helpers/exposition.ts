// Parses Prometheus exposition text with the official Python client's parser
// (Debian's python3-prometheus-client), an independent implementation of the
// format, so a test never checks our writer against our own reading of it.
import { spawnSync } from "node:child_process";

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedFamily {
  /** As the parser names it: counters lose their `_total` suffix. */
  name: string;
  type: string;
  help: string;
  samples: ParsedSample[];
}

const PYTHON = "/usr/bin/python3";
const SCRIPT = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = [{"name": f.name, "type": f.type, "help": f.documentation,
         "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
        for f in text_string_to_metric_families(sys.stdin.read())]
json.dump(out, sys.stdout)
`;

export function parseExposition(text: string): ParsedFamily[] {
  const r = spawnSync(PYTHON, ["-c", SCRIPT], { input: text, encoding: "utf8" });
  if (r.error) throw new Error(`${PYTHON}: ${r.error.message} (apt-get install python3-prometheus-client)`);
  if (r.status !== 0) throw new Error(`the exposition parser rejected the text: ${r.stderr.trim().split("\n").at(-1)}`);
  return JSON.parse(r.stdout) as ParsedFamily[];
}

/** Every sample, flat. */
export function samples(text: string): ParsedSample[] {
  return parseExposition(text).flatMap((f) => f.samples);
}

/** The one sample with this name whose labels include `labels`; throws when there is not exactly one. */
export function sample(all: ParsedSample[], name: string, labels: Record<string, string> = {}): number {
  const hits = all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${hits.length}`);
  return hits[0]!.value;
}
