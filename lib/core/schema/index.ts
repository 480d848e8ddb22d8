// Every document we parse (the config, the slot state file, launchd plists)
// is checked against a zod schema. This turns zod's issues into problems that
// name the key path (and, for YAML, the line), every problem of a document at
// once, with "did you mean" for unknown keys (strictObject's unrecognized keys).
import type { z } from "zod";
import { unknownKey } from "./did-you-mean.ts";
import { formatPath, type Path, type PathProblem } from "./path.ts";
import { YamlText } from "./yaml.ts";

export { describeValue, formatPath } from "./path.ts";

export interface Problem {
  /** Dotted key path, e.g. "github.app.id" or "runner.labels[2]"; "" for the document as a whole. */
  path: string;
  /** 1-based line of the key or item the problem is about, when the document has one. */
  line?: number;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

/** "line 3: github.url: must be ..." */
export function formatProblem(p: Problem): string {
  const where = [p.line === undefined ? "" : `line ${p.line}`, p.path].filter(Boolean).join(": ");
  return where ? `${where}: ${p.message}` : p.message;
}

/** Checks data already parsed (e.g. from a plist). */
export function validate<S extends z.ZodType>(schema: S, data: unknown): Checked<z.output<S>> {
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: issueProblems(schema, result.error.issues).map((p) => ({ path: formatPath(p.path), message: p.message })) };
}

/** Parses JSON text and checks it; a syntax error is the one problem. */
export function parseJson<S extends z.ZodType>(schema: S, text: string): Checked<z.output<S>> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [{ path: "", message: `invalid JSON: ${(err as Error).message}` }] };
  }
  return validate(schema, data);
}

/**
 * Parses YAML text and checks it; problems carry lines and come in file order
 * (those without a line, like missing keys, last). After a syntax error
 * nothing else is checked. An empty value (`key:`) counts as absent.
 */
export function parseYaml<S extends z.ZodType>(schema: S, text: string): Checked<z.output<S>> {
  const doc = new YamlText(text);
  if (doc.syntaxError) return { ok: false, problems: doc.problems.map(({ line, message }) => ({ path: "", ...(line !== undefined && { line }), message })) };
  const result = schema.safeParse(doc.data);
  const found = [...doc.problems, ...(result.success ? [] : issueProblems(schema, result.error.issues))];
  if (result.success && found.length === 0) return { ok: true, value: result.data };
  const problems = found.map(({ path, line = doc.lineAt(path), message }): Problem => ({ path: formatPath(path), ...(line !== undefined && { line }), message }));
  // sort is stable: problems on one line keep the schema's order.
  return { ok: false, problems: problems.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER)) };
}

/** One problem per issue, one per unknown key; a repeat of the same message at the same path is dropped. */
function issueProblems(schema: z.ZodType, issues: readonly z.core.$ZodIssue[]): PathProblem[] {
  const out: PathProblem[] = [];
  const seen = new Set<string>();
  const add = (path: Path, message: string) => {
    const id = `${formatPath(path)}\n${message}`;
    if (!seen.has(id)) out.push({ path, message }), seen.add(id);
  };
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") add(issue.path, issue.message);
    else for (const key of issue.keys) add([...issue.path, key], unknownKey(key, keysAt(schema, issue.path)));
  }
  return out;
}

/** Wrappers and pipes around a schema, as far as this walk needs to see through them. */
interface Def {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  out?: z.core.$ZodType;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
}

const defOf = (s: z.core.$ZodType) => s._zod.def as Def;

/** The keys the object schema at `path` allows (for "did you mean"). */
function keysAt(schema: z.core.$ZodType, path: Path): string[] {
  let at: z.core.$ZodType | undefined = schema;
  for (const seg of path) {
    const def = defOf(unwrap(at));
    at = def.type === "object" ? def.shape?.[seg as string] : def.type === "array" ? def.element : def.type === "record" ? def.valueType : undefined;
    if (!at) return [];
  }
  return Object.keys(defOf(unwrap(at)).shape ?? {});
}

/** Through optional/default/prefault/... to the inner type, and through a pipe to the side that is not a transform. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) s = defOf(def.in).type === "transform" ? def.out : def.in;
    else return s;
  }
}
