// What goes wrong in a config file, and the one error that reports all of it.
import { MacosRunnerError } from "../core/errors.ts";
import { formatProblem, type Problem } from "../core/schema/index.ts";

/** A problem with a key: its dotted path ("" for the file), its line when it has one, and what is wrong. */
export type ConfigProblem = Problem;

/** The config file (or a file it names) is wrong; kind "config". */
export class ConfigError extends MacosRunnerError {
  readonly problems: ConfigProblem[];

  constructor(message: string, problems: ConfigProblem[] = []) {
    super(message, { kind: "config" });
    this.problems = problems;
  }

  /** One error for every problem in `file` (given in file order). */
  static forFile(file: string, problems: ConfigProblem[]): ConfigError {
    const count = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    return new ConfigError([`config ${file} has ${count}:`, ...problems.map((p) => `  ${formatProblem(p)}`)].join("\n"), problems);
  }
}

/** Thrown by a value check; the schema turns it into a problem at the key being read. */
export class Invalid extends Error {}
