// The GitHub answers we read, checked, so a malformed one is a BadInputError
// naming the call and the field, not a TypeError three calls later.
import { formatPath, z } from "../core/schema/index.ts";
import { BadInputError, excerpt } from "../core/errors.ts";

function kindOf(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** The kind of what came, never its value (a JIT answer's other fields are secret). */
const expected = (what: string) => ({ error: (issue: { input?: unknown }) => `${kindOf(issue.input)}, expected ${what}` });
const NATURAL = expected("a non-negative integer");
const TEXT = expected("a non-empty string");
const id = z.int(NATURAL).min(0, NATURAL);
const text = z.string(TEXT).min(1, TEXT);
const object = <S extends z.ZodRawShape>(shape: S) => z.object(shape, expected("an object"));

const runner = object({ id, name: text, status: text, busy: z.boolean(expected("true or false")) });
const jitConfig = object({ runner: object({ id, name: text }), encoded_jit_config: text }).transform((j) => ({ runner: j.runner, encodedJitConfig: j.encoded_jit_config }));
const expiringToken = object({ token: text, expires_at: text.refine((s) => Number.isFinite(Date.parse(s)), expected("an ISO 8601 date-time")) })
  .transform((t) => ({ token: t.token, expiresAt: t.expires_at }));

export type Runner = z.output<typeof runner>;
export type JitConfig = z.output<typeof jitConfig>;
/** `expiresAt` is ISO 8601, as GitHub gave it. */
export type ExpiringToken = z.output<typeof expiringToken>;

function reader<S extends z.ZodType>(schema: S) {
  return (where: string, data: unknown): z.output<S> => {
    const checked = schema.safeParse(data);
    if (checked.success) return checked.data;
    const issue = checked.error.issues[0]!;
    const what = typeof data === "string" ? `the answer is not JSON: "${excerpt(data)}"` : `${formatPath(issue.path) || "the answer"} is ${issue.message}`;
    throw new BadInputError(`${where}: GitHub's answer does not have the documented shape (${what}). GitHub, or a proxy in front of it, answered something unexpected.`);
  };
}

export const answers = {
  jitConfig: reader(jitConfig),
  runner: reader(runner),
  runnerPage: reader(object({ runners: z.array(runner, expected("an array")) }).transform((p) => p.runners)),
  groupPage: reader(object({ runner_groups: z.array(object({ id, name: text }), expected("an array")) }).transform((p) => p.runner_groups)),
  installationId: reader(object({ id }).transform((i) => i.id)),
  expiringToken: reader(expiringToken),
};
