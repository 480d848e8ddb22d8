// The CLI convention every script shares: declared options, --help with exit
// codes, --config/--slot/--verbose, unknown flags are usage errors (exit 64).
import { parseArgs } from "node:util";
import { EXIT, MacosRunnerError, UsageError } from "./errors.ts";

export interface OptionSpec {
  type: "string" | "boolean";
  description: string;
  short?: string;
  /** Placeholder shown in --help, e.g. PATH. */
  value?: string;
  multiple?: boolean;
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  name: string;
  summary: string;
  /** Positional arguments shown in the usage line, e.g. "[VM]". */
  args?: string;
  options: O;
  /** Exit codes specific to this command; the shared ones are added. */
  exitCodes?: Record<number, string>;
  /** Takes --config/--slot/--verbose (true for every step script). */
  common?: boolean;
}

type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : O[K]["multiple"] extends true ? string[] : string;
};

export interface CommonFlags {
  config?: string;
  slot?: number;
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

const SHARED_EXIT_CODES: Record<number, string> = {
  [EXIT.ok]: "success",
  [EXIT.failure]: "failed (the log line says what and where)",
  [EXIT.usage]: "bad flags or arguments",
  [EXIT.config]: "config or secret file invalid",
};

export function helpText<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>): string {
  const all = { ...(spec.common === false ? {} : COMMON), ...spec.options, help: { type: "boolean", description: "show this help" } as OptionSpec };
  const rows = Object.entries(all).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`;
    return `  ${flag.padEnd(28)} ${o.description}`;
  });
  const codes = { ...SHARED_EXIT_CODES, ...spec.exitCodes };
  const exitRows = Object.entries(codes)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([code, what]) => `  ${code.padStart(3)}  ${what}`);
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

export function parseCli<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>, argv: string[]): Parsed<O> | "help" {
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
    });
  } catch (err) {
    throw new UsageError(`${spec.name}: ${(err as Error).message.replace(/\. To specify a positional.*$/s, "")}`);
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) return "help";
  if (!spec.args && parsed.positionals.length > 0) {
    throw new UsageError(`${spec.name}: unexpected argument '${parsed.positionals[0]}'`);
  }
  let slot: number | undefined;
  if (values.slot !== undefined) {
    slot = Number(values.slot);
    if (!Number.isInteger(slot) || slot < 1 || slot > 2) {
      throw new UsageError(`${spec.name}: --slot must be 1 or 2, got '${values.slot}'`);
    }
  }
  const common: CommonFlags = { config: values.config as string | undefined, slot, verbose: Boolean(values.verbose) };
  return { values: values as Values<O>, common, positionals: parsed.positionals };
}

/**
 * Runs a command as a CLI: parses argv, prints --help, and maps thrown
 * errors to their exit codes with a one-line message on stderr.
 */
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
      code = EXIT.ok;
    } else {
      code = (await main(args)) ?? EXIT.ok;
    }
  } catch (err) {
    if (err instanceof MacosRunnerError) {
      process.stderr.write(`${err.message}\n`);
      if (err instanceof UsageError) process.stderr.write(`See '${spec.name} --help'.\n`);
      code = err.exitCode;
    } else {
      process.stderr.write(`${spec.name}: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
      code = EXIT.failure;
    }
  }
  process.exit(code);
}
