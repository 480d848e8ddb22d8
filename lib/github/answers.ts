// Checks of the GitHub answers we use, field by field, so a malformed one is a
// BadInputError naming the call and the field, not a TypeError three calls
// later. Only what we read is checked; GitHub may add fields freely.
import { BadInputError, excerpt } from "../core/errors.ts";

export interface Runner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
}

export interface JitConfig {
  runner: { id: number; name: string };
  encodedJitConfig: string;
}

export interface ExpiringToken {
  token: string;
  /** ISO 8601, as GitHub gave it. */
  expiresAt: string;
}

class Malformed extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`${path}: expected ${expected}`);
  }
}

function kindOf(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Malformed(path, "an object", v);
  return v as Record<string, unknown>;
}

function integer(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Malformed(path, "a non-negative integer", v);
  return v;
}

function text(v: unknown, path: string): string {
  if (typeof v !== "string" || v === "") throw new Malformed(path, "a non-empty string", v);
  return v;
}

function boolean(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") throw new Malformed(path, "true or false", v);
  return v;
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new Malformed(path, "an array", v);
  return v;
}

function date(v: unknown, path: string): string {
  const s = text(v, path);
  if (!Number.isFinite(Date.parse(s))) throw new Malformed(path, "an ISO 8601 date-time", v);
  return s;
}

function runner(v: unknown, path: string): Runner {
  const r = object(v, path);
  return { id: integer(r.id, `${path}.id`), name: text(r.name, `${path}.name`), status: text(r.status, `${path}.status`), busy: boolean(r.busy, `${path}.busy`) };
}

function expiringToken(v: unknown): ExpiringToken {
  const d = object(v, "the answer");
  return { token: text(d.token, "token"), expiresAt: date(d.expires_at, "expires_at") };
}

/** Reads `data` with `read`; a malformed answer becomes a BadInputError that names `where` and the field. */
function parse<T>(where: string, data: unknown, read: (data: unknown) => T): T {
  try {
    return read(data);
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    // Name the field and its type, never its value: a JIT answer's other fields are secret.
    const what = typeof data === "string" ? `the answer is not JSON: "${excerpt(data)}"` : `${err.path} is ${kindOf(err.got)}, expected ${err.expected}`;
    throw new BadInputError(`${where}: GitHub's answer does not have the documented shape (${what}). GitHub, or a proxy in front of it, answered something unexpected.`);
  }
}

export const answers = {
  jitConfig: (where: string, data: unknown): JitConfig =>
    parse(where, data, (v) => {
      const d = object(v, "the answer");
      const r = object(d.runner, "runner");
      return { runner: { id: integer(r.id, "runner.id"), name: text(r.name, "runner.name") }, encodedJitConfig: text(d.encoded_jit_config, "encoded_jit_config") };
    }),

  runner: (where: string, data: unknown): Runner => parse(where, data, (v) => runner(v, "the answer")),

  runnerPage: (where: string, data: unknown): Runner[] =>
    parse(where, data, (v) => list(object(v, "the answer").runners, "runners").map((r, i) => runner(r, `runners[${i}]`))),

  groupPage: (where: string, data: unknown): { id: number; name: string }[] =>
    parse(where, data, (v) =>
      list(object(v, "the answer").runner_groups, "runner_groups").map((g, i) => {
        const o = object(g, `runner_groups[${i}]`);
        return { id: integer(o.id, `runner_groups[${i}].id`), name: text(o.name, `runner_groups[${i}].name`) };
      }),
    ),

  installationId: (where: string, data: unknown): number => parse(where, data, (v) => integer(object(v, "the answer").id, "id")),

  /** An installation access token, a registration token: `{token, expires_at}`. */
  expiringToken: (where: string, data: unknown): ExpiringToken => parse(where, data, expiringToken),
};
