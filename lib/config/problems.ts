// What goes wrong in a config file, and the one error that reports all of it.
import { MacosRunnerError } from "../errors.ts";

export interface ConfigProblem {
  /** Dotted key path, e.g. "github.app.id" or "runner.labels[2]"; "" for the file as a whole. */
  path: string;
  /** 1-based line of the YAML node the problem is about, when there is one. */
  line?: number;
  message: string;
}

/** The config file (or a file it names) is wrong; kind "config". */
export class ConfigError extends MacosRunnerError {
  readonly problems: ConfigProblem[];

  constructor(message: string, problems: ConfigProblem[] = []) {
    super(message, { kind: "config" });
    this.problems = problems;
  }

  /** One error for every problem in `file`, listed in file order. */
  static forFile(file: string, problems: ConfigProblem[]): ConfigError {
    // Problems without a line (missing keys) go last; sort is stable, so ties keep their order.
    const sorted = [...problems].sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
    const count = `${sorted.length} problem${sorted.length === 1 ? "" : "s"}`;
    return new ConfigError([`config ${file} has ${count}:`, ...sorted.map((p) => `  ${formatProblem(p)}`)].join("\n"), sorted);
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = [p.line === undefined ? "" : `line ${p.line}`, p.path].filter(Boolean).join(": ");
  return where ? `${where}: ${p.message}` : p.message;
}

/** Thrown by a value check; the reader turns it into a problem at the key being read. */
export class Invalid extends Error {}
