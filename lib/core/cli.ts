// The CLI convention every script shares: declared options, --help with the exit
// table from errors.ts, --config/--slot/--verbose, fatal errors as one log line.
import { parseArgs } from "node:util";
import { EXIT_TABLE, exitCode, MacosRunnerError, UsageError, type ExitKind } from "./errors.ts";
import { createLogger } from "./log.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  description: string;
  short?: string;
  /** --help's placeholder, e.g. PATH. */
  value?: string;
  multiple?: boolean;
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  name: string;
  summary: string;
  /** Positionals for the usage line, e.g. "[VM]". */
  args?: string;
  options: O;
  /** Kinds beyond the shared ones, each with what it means here. */
  exits?: Partial<Record<ExitKind, string>>;
  /** Takes --config/--slot/--verbose (default true). */
  common?: boolean;
}

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : O[K]["multiple"] extends true ? string[] : string;
};

export interface CommonFlags {
  config?: string | undefined;
  slot?: number | undefined;
  verbose: boolean;
}

export interface Parsed<O extends Record<string, OptionSpec>> {
  values: Values<O>;
  common: CommonFlags;
  positionals: string[];
}

const COMMON: Record<string, OptionSpec> = {
  config: { type: "string", value: "PATH", description: "config file (default $MACOS_RUNNER_CONFIG, else ~/.config/macos-runner/config.yml)" },
  slot: { type: "string", value: "N", description: "VM slot number (1 or 2)" },
  verbose: { type: "boolean", description: "log debug events too" },
};

const SHARED_EXITS: ExitKind[] = ["ok", "failure", "usage", "config"];

function helpText<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): string {
  const all = { ...(spec.common === false ? {} : COMMON), ...spec.options, help: { type: "boolean", description: "show this help" } as OptionSpec };
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return `  ${flag.padEnd(28)} ${o.description}`;
  });
  const kinds = new Set<ExitKind>([...SHARED_EXITS, ...(Object.keys(spec.exits ?? {}) as ExitKind[])]);
  const exitRows = [...kinds]
    .sort((a, b) => exitCode(a) - exitCode(b))
    .map((kind) => `  ${String(exitCode(kind)).padStart(3)}  ${kind.padEnd(11)} ${spec.exits?.[kind] ?? EXIT_TABLE[kind].meaning}`);
  return [
    `${spec.name}: ${spec.summary}`,
    "",
    `Usage: ${spec.name} [options]${spec.args ? ` ${spec.args}` : ""}`,
    "",
    "Options:",
    ...rows,
    "",
    "Exit codes:",
    ...exitRows,
    "",
  ].join("\n");
}

function parseCli<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>, argv: string[]): Parsed<O> | "help" {
  const all: Record<string, OptionSpec> = { ...(spec.common === false ? {} : COMMON), ...spec.options, help: { type: "boolean", short: "h", description: "" } };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(
        // Bun's parseArgs rejects keys that are present but undefined.
        Object.entries(all).map(([k, o]) => [k, { type: o.type, ...(o.short && { short: o.short }), ...(o.multiple && { multiple: o.multiple }) }]),
      ),
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (err) {
    throw new UsageError(`${spec.name}: ${(err as Error).message.replace(/\. To specify a positional.*$/s, "")}`);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) return "help";
  if (!spec.args && parsed.positionals.length > 0) {
    throw new UsageError(`${spec.name}: unexpected argument '${parsed.positionals[0]}'`);
  }
  const repeated = Object.keys(all).find((k) => !all[k]!.multiple && parsed.tokens.filter((t) => t.kind === "option" && t.name === k).length > 1);
  if (repeated) throw new UsageError(`${spec.name}: --${repeated} given more than once`);
  let slot: number | undefined;
  if (values.slot !== undefined) {
    // Plain decimal only: Number() would take 0x1, 1e0 and " 1".
    if (!/^[12]$/.test(String(values.slot))) throw new UsageError(`${spec.name}: --slot must be 1 or 2, got '${values.slot}'`);
    slot = Number(values.slot);
  }
  const common: CommonFlags = { config: values.config as string | undefined, slot, verbose: Boolean(values.verbose) };
  return { values: values as Values<O>, common, positionals: parsed.positionals };
}

/** An error without a kind is a bug: its stack goes to the log too. */
export async function runCli<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  main: (args: Parsed<O>) => Promise<number | void>,
  argv: string[] = process.argv.slice(2),
): Promise<never> {
  let code: number;
  try {
    const args = parseCli(spec, argv);
    if (args === "help") {
      process.stdout.write(helpText(spec));
      code = exitCode("ok");
    } else {
      code = (await main(args)) ?? exitCode("ok");
    }
  } catch (err) {
    code = reportFatal(spec.name, err);
  }
  process.exit(code);
}

export function reportFatal(command: string, err: unknown): number {
  const log = createLogger({ fields: { command } });
  if (err instanceof MacosRunnerError) {
    const hint = err instanceof UsageError ? ` (see '${command} --help')` : "";
    log.error("fatal", `${err.message}${hint}`, { kind: err.kind, exit_code: err.exitCode });
    return err.exitCode;
  }
  log.error("fatal", `unexpected error: ${(err as Error)?.message ?? String(err)}`, { kind: "failure", stack: (err as Error)?.stack });
  return exitCode("failure");
}
