// The kinds of value a config key holds, as zod schemas whose messages say
// what was expected and what was found ("must be a positive integer, got
// "abc""), with a hint when the YAML type is the likely slip (quotes, a unit).
import { describeValue, z } from "../core/schema/index.ts";
import { DURATION_SYNTAX, DurationError, formatDuration, parseDuration } from "../core/durations.ts";
import { Invalid } from "./problems.ts";

type Hint = (input: unknown) => string;

const noHint: Hint = () => "";
/** `group: 7` meant the text "7". */
const quoteHint: Hint = (v) => (typeof v === "number" || typeof v === "boolean" ? ` (a ${typeof v}; quote it if you mean the text)` : "");
/** `slots: "2"` meant the number 2. */
const unquoteHint =
  (pattern: RegExp): Hint =>
  (v) =>
    typeof v === "string" && pattern.test(v) ? " (a string; remove the quotes)" : "";

/** The message for a value of the wrong type, or for a required key that is missing (`required` is its hint). */
function wrongType(expect: string, hint: Hint, required?: string) {
  return (iss: { input?: unknown }) => {
    if (iss.input === undefined) return `missing (required)${required ? `; ${required}` : ""}`;
    if (iss.input === null) return "must not be empty";
    return `must be ${expect}, got ${describeValue(iss.input)}${hint(iss.input)}`;
  };
}

// zod runs length checks on any value with a length, even after the type
// check failed (a list given for a string); a wrong type gets only its own message.
const isString = { when: (payload: { value: unknown }) => typeof payload.value === "string" };
const isList = { when: (payload: { value: unknown }) => Array.isArray(payload.value) };

/** A non-empty string; `expect` and `hint` word the message for another type. */
function nonEmpty(expect: string, hint: Hint, required?: string) {
  return z.string({ error: wrongType(expect, hint, required) }).min(1, { error: "must not be empty", ...isString });
}

/** `pattern` anchored and also matching "", so that an empty string gets only "must not be empty". */
const wholeOrEmpty = (pattern: RegExp) => new RegExp(`^(?:${pattern.source})?$`);

/** A non-empty string. */
export function text(o: { required?: string } = {}) {
  return nonEmpty("a string", quoteHint, o.required);
}

/** A non-empty string that is all of `pattern`; `refusal` words the message for one that is not. */
export function matching(pattern: RegExp, refusal: (got: string) => string, o: { required?: string } = {}) {
  return text(o).regex(wholeOrEmpty(pattern), { error: (iss) => refusal(describeValue(iss.input)) });
}

/** A non-empty string passed through `convert`, which throws Invalid to refuse it (paths, URLs). */
export function converted<T>(convert: (s: string) => T, o: { required?: string } = {}) {
  return text(o).transform((s, ctx) => attempt(ctx, s, convert));
}

/** `convert(input)`, or an issue with the message of the Invalid it threw. */
export function attempt<I, T>(ctx: z.core.$RefinementCtx, input: I, convert: (input: I) => T): T {
  try {
    return convert(input);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    ctx.addIssue({ code: "custom", message: err.message, input });
    return z.NEVER;
  }
}

/** An integer of at least `min` (and at most `max`). */
export function integer(o: { min: number; max?: number; required?: string }) {
  const { min } = o;
  const expect = o.max !== undefined ? `an integer from ${min} to ${o.max}` : min === 1 ? "a positive integer" : `an integer of at least ${min}`;
  const error = wrongType(expect, unquoteHint(/^-?\d+$/), o.required);
  // refine, not z.int(): zod marks a non-integer as an aborting issue, after
  // which it skips the cross-key rules of every enclosing section.
  const int = z.number({ error }).refine(Number.isSafeInteger, { error }).min(min, { error });
  return (o.max === undefined ? int : int.max(o.max, { error })).meta({ type: "integer" });
}

/** One of `values`, e.g. vm.start: cold or snapshot. */
export function oneOf<const V extends readonly [string, ...string[]]>(values: V) {
  const expect = `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
  return z.enum(values, { error: wrongType(expect, noHint) });
}

/** One of a few numbers, e.g. host.slots: 1 or 2; `expect` says which and why. */
export function numberIn<const V extends readonly [number, ...number[]]>(values: V, expect: string) {
  return z.literal(values, { error: wrongType(expect, unquoteHint(/^-?\d+$/)) });
}

export function flag() {
  return z.boolean({ error: wrongType("true or false", unquoteHint(/^(true|false)$/)) });
}

const DURATION_FORMS = "a duration such as 90s, 3m, 6h or 1h30m (units ms, s, m, h)";

/**
 * Longest wait a JavaScript timer (setTimeout) can do: a signed 32-bit count
 * of milliseconds; anything longer fires at once.
 */
const TIMER_MAX_MS = 2 ** 31 - 1;

/** A duration ("90s", "3m", "1h30m") longer than zero and at most `max` (default: what a timer can wait), in milliseconds. */
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
        // The syntax is checked above: what is left is a number too large to count.
        if (err instanceof DurationError) return problem(tooLong(s));
        throw err;
      }
      if (ms <= 0) return problem(`must be longer than zero, got ${JSON.stringify(s)}`);
      return ms <= max.ms ? ms : problem(tooLong(s));
    });
}

/** Problems of one label, in the order the runner would trip over them. */
function labelProblem(value: string): string | undefined {
  if (value.trim() === "") return "must not be empty";
  if (value.trim() !== value) return `${JSON.stringify(value)} has leading or trailing spaces`;
  if (value.length > 256) return `is ${value.length} characters; labels are at most 256`;
  if (value.includes(",")) return `${JSON.stringify(value)} contains a comma; the runner splits labels on commas, so give each label as its own list entry`;
  return undefined;
}

/** Runner labels: 1 to 100 distinct (case-insensitively) strings without commas. */
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
      // Also when some items are of the wrong type: those are skipped above.
      isList,
    );
}

/** A mapping of exactly these keys; an unknown key is a problem of its own (with "did you mean"). */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) => (iss.code === "invalid_type" ? `must be a mapping of ${keys}, got ${describeValue(iss.input)}` : undefined),
  });
}

/**
 * A section left out reads as an empty one, so that its required keys are
 * reported one by one ("vm.ssh.private_key_path: missing"); the empty mapping
 * is only the starting point the section's schema checks.
 */
export function omittable<S extends z.ZodType>(schema: S) {
  return schema.prefault({} as z.input<S> & {});
}

/** Cross-key rules of a section run even when some of its keys have problems, as long as it is a mapping. */
export const whenMapping = {
  when: (payload: { value: unknown }) => typeof payload.value === "object" && payload.value !== null && !Array.isArray(payload.value),
};
