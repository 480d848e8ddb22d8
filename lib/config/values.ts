// The kinds of value a config key holds, as zod schemas whose messages say what
// was expected and what was found, with a hint for the likely YAML slip.
import { createPrivateKey } from "node:crypto";
import { statSync, type Stats } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { MacosRunnerError, UsageError } from "../core/errors.ts";
import { quote } from "../core/proc.ts";
import { describeValue, formatProblem, z, type Problem } from "../core/schema/index.ts";
import { readSecretFile } from "../core/secrets.ts";

export class ConfigError extends MacosRunnerError {
  constructor(message: string, readonly problems: Problem[] = []) {
    super(message, { kind: "config" });
  }

  static forFile(file: string, problems: Problem[]): ConfigError {
    const count = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    return new ConfigError([`config ${file} has ${count}:`, ...problems.map((p) => `  ${formatProblem(p)}`)].join("\n"), problems);
  }
}

/** Thrown by a value check; the schema turns it into a problem at the key being read. */
export class Invalid extends Error {}

type Hint = (input: unknown) => string;

const noHint: Hint = () => "";
const quoteHint: Hint = (v) => (typeof v === "number" || typeof v === "boolean" ? ` (a ${typeof v}; quote it if you mean the text)` : "");
const unquoteHint =
  (pattern: RegExp): Hint =>
  (v) =>
    typeof v === "string" && pattern.test(v) ? " (a string; remove the quotes)" : "";

/** `required` is the hint for a missing key. */
function wrongType(expect: string, hint: Hint, required?: string) {
  return (iss: { input?: unknown }) => {
    if (iss.input === undefined) return `missing (required)${required ? `; ${required}` : ""}`;
    if (iss.input === null) return "must not be empty";
    return `must be ${expect}, got ${describeValue(iss.input)}${hint(iss.input)}`;
  };
}

// zod runs length checks even after the type check failed (a list for a string).
const isString = { when: (payload: { value: unknown }) => typeof payload.value === "string" };
const isList = { when: (payload: { value: unknown }) => Array.isArray(payload.value) };

function nonEmpty(expect: string, hint: Hint, required?: string) {
  return z.string({ error: wrongType(expect, hint, required) }).min(1, { error: "must not be empty", ...isString });
}

/** Also matches "", so an empty string gets only "must not be empty". */
const wholeOrEmpty = (pattern: RegExp) => new RegExp(`^(?:${pattern.source})?$`);

export function text(o: { required?: string } = {}) {
  return nonEmpty("a string", quoteHint, o.required);
}

export function matching(pattern: RegExp, refusal: (got: string) => string, o: { required?: string } = {}) {
  return text(o).regex(wholeOrEmpty(pattern), { error: (iss) => refusal(describeValue(iss.input)) });
}

/** `convert` throws Invalid to refuse. */
export function converted<T>(convert: (s: string) => T, o: { required?: string } = {}) {
  return text(o).transform((s, ctx) => attempt(ctx, s, convert));
}

export function attempt<I, T>(ctx: z.core.$RefinementCtx, input: I, convert: (input: I) => T): T {
  try {
    return convert(input);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    ctx.addIssue({ code: "custom", message: err.message, input });
    return z.NEVER;
  }
}

export function integer(o: { min: number; max?: number; required?: string }) {
  const { min } = o;
  const expect = o.max !== undefined ? `an integer from ${min} to ${o.max}` : min === 1 ? "a positive integer" : `an integer of at least ${min}`;
  const error = wrongType(expect, unquoteHint(/^-?\d+$/), o.required);
  // Not z.int(): its aborting issue would skip every enclosing section's cross-key rules.
  const int = z.number({ error }).refine(Number.isSafeInteger, { error }).min(min, { error });
  return (o.max === undefined ? int : int.max(o.max, { error })).meta({ type: "integer" });
}

export function oneOf<const V extends readonly [string, ...string[]]>(values: V) {
  const expect = `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
  return z.enum(values, { error: wrongType(expect, noHint) });
}

export function numberIn<const V extends readonly [number, ...number[]]>(values: V, expect: string) {
  return z.literal(values, { error: wrongType(expect, unquoteHint(/^-?\d+$/)) });
}

export function flag() {
  return z.boolean({ error: wrongType("true or false", unquoteHint(/^(true|false)$/)) });
}

// Durations as operators write them: "90s", "1h30m", "500ms" (parts add up).
const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
/** Unanchored, for schemas to build on. */
const DURATION_SYNTAX = /(?:\d+(?:\.\d+)?(?:ms|s|m|h))+/;
const WHOLE = new RegExp(`^${DURATION_SYNTAX.source}$`);
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

class DurationError extends UsageError {}

export function parseDuration(s: string): number {
  if (!WHOLE.test(s)) {
    throw new DurationError(`bad duration ${JSON.stringify(s)}: use a number with a unit (ms, s, m, h), e.g. 90s, 3m, 6h or 1h30m`);
  }
  let total = 0;
  for (const [, amount, unit] of s.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms)) throw new DurationError(`bad duration ${JSON.stringify(s)}: too long`);
  return ms;
}

/** 65535000 is "18h12m15s". */
function formatDuration(ms: number): string {
  let rest = ms;
  let out = "";
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out || "0ms";
}

const DURATION_FORMS = "a duration such as 90s, 3m, 6h or 1h30m (units ms, s, m, h)";

/** A longer setTimeout fires at once. */
const TIMER_MAX_MS = 2 ** 31 - 1;

export function duration(o: { max?: { ms: number; why: string } } = {}) {
  const max = o.max ?? { ms: TIMER_MAX_MS, why: "a timer waits at most 2^31-1 ms, about 24.8 days" };
  const tooLong = (s: string) => `must be at most ${formatDuration(max.ms)} (${max.why}), got ${JSON.stringify(s)}`;
  const numberHint: Hint = (v) => (typeof v === "number" ? ` (a number; add a unit, e.g. ${v}s)` : "");
  return nonEmpty(DURATION_FORMS, numberHint)
    .regex(wholeOrEmpty(DURATION_SYNTAX), { error: (iss) => `must be ${DURATION_FORMS}, got ${describeValue(iss.input)}` })
    .transform((s, ctx) => {
      const problem = (message: string) => (ctx.addIssue({ code: "custom", message, input: s }), z.NEVER);
      let ms: number;
      try {
        ms = parseDuration(s);
      } catch (err) {
        // The syntax was checked: only a number too large to count is left.
        if (err instanceof DurationError) return problem(tooLong(s));
        throw err;
      }
      if (ms <= 0) return problem(`must be longer than zero, got ${JSON.stringify(s)}`);
      return ms <= max.ms ? ms : problem(tooLong(s));
    });
}

function labelProblem(value: string): string | undefined {
  if (value.trim() === "") return "must not be empty";
  if (value.trim() !== value) return `${JSON.stringify(value)} has leading or trailing spaces`;
  if (value.length > 256) return `is ${value.length} characters; labels are at most 256`;
  if (value.includes(",")) return `${JSON.stringify(value)} contains a comma; the runner splits labels on commas, so give each label as its own list entry`;
  return undefined;
}

export function labels() {
  const label = z.string({ error: wrongType("a string", quoteHint) }).superRefine((value, ctx) => {
    const message = labelProblem(value);
    if (message) ctx.addIssue({ code: "custom", message, input: value });
  });
  const count = (iss: { input?: unknown }) => `must have 1 to 100 entries, got ${(iss.input as unknown[]).length}`;
  return z
    .array(label, { error: (iss) => `must be a list of strings, e.g. [a, b], got ${describeValue(iss.input)}` })
    .min(1, { error: count, ...isList })
    .max(100, { error: count, ...isList })
    .superRefine(
      (items, ctx) => {
        const seen = new Map<string, string>();
        items.forEach((value, i) => {
          if (typeof value !== "string" || labelProblem(value)) return;
          const first = seen.get(value.toLowerCase());
          if (first === undefined) seen.set(value.toLowerCase(), value);
          else ctx.addIssue({ code: "custom", path: [i], message: `${JSON.stringify(value)} repeats ${JSON.stringify(first)} (labels are case-insensitive)`, input: value });
        });
      },
      isList,
    );
}

export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) => (iss.code === "invalid_type" ? `must be a mapping of ${keys}, got ${describeValue(iss.input)}` : undefined),
  });
}

/** A section left out reads as empty, so its required keys are reported one by one. */
export function omittable<S extends z.ZodType>(schema: S) {
  return schema.prefault({} as z.input<S> & {});
}

/** Cross-key rules run even when some keys have problems. */
export const whenMapping = {
  when: (payload: { value: unknown }) => typeof payload.value === "object" && payload.value !== null && !Array.isArray(payload.value),
};

export interface PathBase {
  home: string | undefined;
  /** The config file's directory, for relative paths. */
  dir: string;
}

export function expandPath(raw: string, base: PathBase): string {
  if (raw === "~" || raw.startsWith("~/")) {
    if (!base.home) throw new Invalid(`${raw} starts with ~ but HOME is not set; use an absolute path`);
    return resolve(base.home, raw.slice(2));
  }
  if (raw.startsWith("~")) throw new Invalid(`${raw}: ~user paths are not supported; use ~/... or an absolute path`);
  return isAbsolute(raw) ? resolve(raw) : resolve(base.dir, raw);
}

/** A bare name is found on PATH. */
export function commandPath(raw: string, base: PathBase): string {
  return raw.includes("/") ? expandPath(raw, base) : raw;
}

// A pasted token or key, refused without being echoed.
const INLINE_SECRET = /^(gh[pousr]_|github_pat_)|-----BEGIN /;

export function secretFile(raw: string, base: PathBase): string {
  if (INLINE_SECRET.test(raw)) {
    throw new Invalid("holds what looks like a secret itself, not a path; put the secret in a file with mode 0600 and give that file's path");
  }
  const path = expandPath(raw, base);
  const mode = statFile(path).mode & 0o7777;
  if ((mode & 0o077) !== 0) {
    const octal = mode.toString(8).padStart(4, "0");
    throw new Invalid(`${path} is mode ${octal}; secrets must be 0600 (chmod 600 ${quote(path)})`);
  }
  return path;
}

/** Checked here so a wrong file is a config problem, not a failed token request every cycle. */
export function appPrivateKeyFile(raw: string, base: PathBase): string {
  const path = secretFile(raw, base);
  const fix = "put the App's private key there (the .pem file from Generate a private key on the App's settings page)";
  let pem: string;
  try {
    pem = readSecretFile(path, "github.app.private_key_path", fix);
  } catch (err) {
    throw new Invalid((err as Error).message);
  }
  let type: string | undefined;
  try {
    type = createPrivateKey({ key: pem, format: "pem" }).asymmetricKeyType;
  } catch {
    // Not echoed: whatever the file holds may be secret.
    throw new Invalid(`${path} does not hold a PEM private key; ${fix}`);
  }
  if (type !== "rsa") throw new Invalid(`${path} holds a key of type ${type ?? "unknown"}, but GitHub App keys are RSA; ${fix}`);
  return path;
}

export function existingFile(raw: string, base: PathBase): string {
  const path = expandPath(raw, base);
  statFile(path);
  return path;
}

function statFile(path: string): Stats {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new Invalid(`${path} does not exist; create it or fix the path`);
    throw new Invalid(`cannot check ${path}: ${(err as Error).message}`);
  }
  if (!stats.isFile()) throw new Invalid(`${path} is ${fileKind(stats)}; it must be a file`);
  return stats;
}

export function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

export type Scope = { kind: "org"; org: string } | { kind: "repo"; owner: string; repo: string } | { kind: "enterprise"; enterprise: string };

export interface GithubTarget {
  /** Lower-case host, no trailing slash. */
  url: string;
  scope: Scope;
}

const FORMS = "https://HOST/ORG, https://HOST/OWNER/REPO or https://HOST/enterprises/NAME";
const NAME = /^[A-Za-z0-9._-]+$/;

export function parseGithubUrl(raw: string): GithubTarget {
  const bad = (why: string) => new Invalid(`must be ${FORMS}, got ${JSON.stringify(raw)} (${why})`);
  const url = httpUrl(raw, bad);
  const parts = url.pathname.replace(/\/+$/, "").split("/").slice(1);
  const [first, second] = parts;
  if (first === undefined || parts.length > 2) throw bad(first === undefined ? "no org, repo or enterprise in the path" : "too many path parts");
  if (!parts.every((p) => NAME.test(p))) throw bad("path parts may hold only letters, digits, '.', '_' and '-'");
  const base = `${url.protocol}//${url.host}`;
  const normalised = `${base}/${parts.join("/")}`;
  if (first === "enterprises") {
    if (second === undefined) throw bad("no enterprise name after /enterprises");
    return { url: normalised, scope: { kind: "enterprise", enterprise: second } };
  }
  if (second === undefined) return { url: normalised, scope: { kind: "org", org: first } };
  if (second.endsWith(".git")) throw bad("that is a clone URL; drop the .git");
  return { url: normalised, scope: { kind: "repo", owner: first, repo: second } };
}

export function parseApiUrl(raw: string): string {
  const url = httpUrl(raw, (why) => new Invalid(`must be an http(s) URL such as https://ghe.example.com/api/v3, got ${JSON.stringify(raw)} (${why})`));
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
}

/** api.github.com, api.SUB.ghe.com (GHE.com), else GHES's /api/v3. */
export function defaultApiUrl(githubUrl: string): string {
  const url = new URL(githubUrl);
  if (url.hostname === "github.com" || url.hostname === "www.github.com") return "https://api.github.com";
  if (url.hostname.endsWith(".ghe.com")) return `${url.protocol}//api.${url.host}`;
  return `${url.protocol}//${url.host}/api/v3`;
}

function httpUrl(raw: string, bad: (why: string) => Invalid): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad("not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw bad(`scheme ${url.protocol.slice(0, -1)} is not http(s)`);
  if (url.search || url.hash) throw bad("no query or fragment allowed");
  // Not echoed: the message would carry the credentials into logs.
  if (url.username || url.password) throw new Invalid("must not hold credentials; they belong in a secret file (github.app or github.token_path)");
  return url;
}
