// A small swift-argument-parser look-alike: long/short flags, `--flag=value`,
// positional arguments, and its error wording for bad input (exit 64).
import { ValidationError } from "./errors.ts";

export interface FlagSpec {
  kind: "bool" | "string";
  short?: string;
  /** Value placeholder used in messages, e.g. "<seconds>". */
  value?: string;
  multiple?: boolean;
}

export interface CommandSpec {
  name: string;
  /** The usage line after `tart <name> `. */
  usage: string;
  /** Names of positional arguments in order, e.g. ["<name>"]; a trailing "..." takes the rest. */
  args: string[];
  /** Positional arguments that may be left out (counted from the end). */
  optionalArgs?: number;
  flags: Record<string, FlagSpec>;
}

export interface ParsedArgs {
  args: string[];
  bool: Record<string, boolean>;
  str: Record<string, string[]>;
}

export function parseArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const out: ParsedArgs = { args: [], bool: {}, str: {} };
  const shortToLong = new Map(Object.entries(spec.flags).flatMap(([k, f]) => (f.short ? [[f.short, k]] : [])));
  const variadic = spec.args.at(-1)?.endsWith("...") ?? false;
  // One iterator: a flag's value is the token after it, and "--" or a
  // variadic argument takes every token left.
  const tokens = argv.values();
  for (const token of tokens) {
    if (token === "--") {
      out.args.push(...tokens);
      break;
    }
    if (variadic && out.args.length >= spec.args.length - 1 && out.args.length > 0 && !token.startsWith("-")) {
      out.args.push(token, ...tokens);
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      out.args.push(token);
      continue;
    }
    const eq = token.indexOf("=");
    const raw = eq > 0 ? token.slice(0, eq) : token;
    const name = raw.startsWith("--") ? raw.slice(2) : shortToLong.get(raw.slice(1));
    const flag = name === undefined ? undefined : spec.flags[name];
    if (!flag || name === undefined) throw new ValidationError(`Unknown option '${raw}'`);
    if (flag.kind === "bool") {
      if (eq > 0) throw new ValidationError(`Unknown option '${token}'`);
      out.bool[name] = true;
      continue;
    }
    const value = eq > 0 ? token.slice(eq + 1) : tokens.next().value;
    if (value === undefined) throw new ValidationError(`Missing value for '${raw} ${flag.value ?? `<${name}>`}'`);
    (out.str[name] ??= []).push(value);
  }
  const required = spec.args.length - (spec.optionalArgs ?? 0);
  const missing = out.args.length < required ? spec.args[out.args.length] : undefined;
  if (missing !== undefined) throw new ValidationError(`Missing expected argument '${missing.replace("...", " ...")}'`);
  if (!variadic && out.args.length > spec.args.length) {
    throw new ValidationError(`Unexpected argument '${out.args[spec.args.length]}'`);
  }
  for (const [name, values] of Object.entries(out.str)) {
    if (values.length > 1 && !spec.flags[name]?.multiple) out.str[name] = values.slice(-1);
  }
  return out;
}

/** A required positional argument (parseArgs has checked that it is there). */
export function positional(parsed: ParsedArgs, index: number): string {
  const value = parsed.args[index];
  if (value === undefined) throw new ValidationError(`Missing expected argument ${index + 1}`);
  return value;
}

/** The last value of a string flag. */
export function opt(parsed: ParsedArgs, name: string): string | undefined {
  return parsed.str[name]?.at(-1);
}

/** An unsigned integer flag, with swift-argument-parser's message when it is not one. */
export function uintOpt(parsed: ParsedArgs, name: string, placeholder: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = opt(parsed, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max) throw new ValidationError(`The value '${value}' is invalid for '--${name} ${placeholder}'`);
  return n;
}

/** An enumerated flag value. */
export function choiceOpt<T extends string>(parsed: ParsedArgs, name: string, choices: readonly T[], fallback: T): T {
  const value = opt(parsed, name);
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new ValidationError(`The value '${value}' is invalid for '--${name} <${name}>'. Please provide one of '${choices.join("', '")}'.`);
  }
  return value as T;
}
