// Every parsed document is checked against a zod schema; zod's issues become
// problems naming the key path (and YAML line), all at once, with "did you mean".
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { z } from "zod";

// Jitless: zod's per-schema compile costs more than it saves when a command parses
// once (~20 ms of CPU per loop cycle). Import z from here, never from "zod".
z.config({ jitless: true });
export { z };

export interface Problem {
  /** "runner.labels[2]"; "" for the document as a whole. */
  path: string;
  line?: number;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

export function formatProblem(p: Problem): string {
  const where = [p.line === undefined ? "" : `line ${p.line}`, p.path].filter(Boolean).join(": ");
  return where ? `${where}: ${p.message}` : p.message;
}

export function validate<S extends z.ZodType>(schema: S, data: unknown): Checked<z.output<S>> {
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: issueProblems(schema, result.error.issues).map((p) => ({ path: formatPath(p.path), message: p.message })) };
}

export function parseJson<S extends z.ZodType>(schema: S, text: string): Checked<z.output<S>> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [{ path: "", message: `invalid JSON: ${(err as Error).message}` }] };
  }
  return validate(schema, data);
}

/** Problems in file order (missing keys last); an empty value (`key:`) counts as absent. */
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

/** One per issue and per unknown key; a repeat at the same path is dropped. */
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

function keysAt(schema: z.core.$ZodType, path: Path): string[] {
  let at: z.core.$ZodType | undefined = schema;
  for (const seg of path) {
    const def = defOf(unwrap(at));
    at = def.type === "object" ? def.shape?.[seg as string] : def.type === "array" ? def.element : def.type === "record" ? def.valueType : undefined;
    if (!at) return [];
  }
  return Object.keys(defOf(unwrap(at)).shape ?? {});
}

/** Through optional/default/... and through a pipe to the side that is not a transform. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in && def.out) s = defOf(def.in).type === "transform" ? def.out : def.in;
    else return s;
  }
}

type Path = readonly PropertyKey[];

interface PathProblem {
  path: Path;
  line?: number | undefined;
  message: string;
}

export function formatPath(path: Path): string {
  return path.reduce<string>((out, seg) => (typeof seg === "number" ? `${out}[${seg}]` : out ? `${out}.${String(seg)}` : String(seg)), "");
}

export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object" && value !== null) return "a mapping";
  if (typeof value !== "string") return String(value);
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
}

// Aliases let a small text stand for a huge document ("billion laughs").
const MAX_ALIASES = 1000;

class YamlText {
  readonly problems: PathProblem[] = [];
  readonly data: unknown;
  readonly syntaxError: boolean;
  private readonly lines = new LineCounter();
  private aliases = 0;
  private readonly doc: Document.Parsed;

  constructor(text: string) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    for (const err of this.doc.errors) {
      this.problems.push({ path: [], line: this.lines.linePos(err.pos[0]).line, message: `invalid YAML: ${err.message}` });
    }
    this.syntaxError = this.problems.length > 0;
    this.data = this.syntaxError ? undefined : this.plain(this.doc.contents, [], true);
  }

  lineAt(path: Path): number | undefined {
    let node: unknown = this.doc.contents;
    let line = this.lineOf(node);
    for (const seg of path) {
      node = this.resolve(node);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
        if (!pair) return undefined;
        line = this.lineOf(pair.key);
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
        node = node.items[seg];
        line = this.lineOf(node) ?? line;
      } else return undefined;
    }
    return line;
  }

  /** An empty mapping value becomes undefined but its key stays, so an unknown key is still reported. */
  private plain(value: unknown, path: Path, inMapping: boolean, within: readonly unknown[] = []): unknown {
    if (isAlias(value) && ++this.aliases > MAX_ALIASES) {
      if (this.aliases === MAX_ALIASES + 1) this.problems.push({ path, line: this.lineOf(value), message: `more than ${MAX_ALIASES} aliases; write the values out` });
      return undefined;
    }
    const node = this.resolve(value);
    if (within.includes(node)) {
      this.problems.push({ path, line: this.lineOf(value), message: "an alias refers to a mapping or list that contains it" });
      return undefined;
    }
    const inside = [...within, node];
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined;
        if (typeof key !== "string") {
          const shown = isScalar(pair.key) ? describeValue(pair.key.value) : isSeq(pair.key) ? "a list" : "a mapping";
          this.problems.push({ path, line: this.lineOf(pair.key), message: `keys must be plain names, got ${shown}` });
          continue;
        }
        // defineProperty: a key named __proto__ is data here, not the prototype.
        Object.defineProperty(out, key, { value: this.plain(pair.value, [...path, key], true, inside), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => this.plain(item, [...path, i], false, inside));
    const scalar = isScalar(node) ? node.value : null;
    return scalar === null && inMapping ? undefined : scalar;
  }

  private resolve(value: unknown): unknown {
    return isAlias(value) ? value.resolve(this.doc) : value;
  }

  private lineOf(node: unknown): number | undefined {
    const range = (node as Node | null)?.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }
}

function unknownKey(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  if (near) return `unknown key; did you mean ${near}?`;
  return known.length > 0 ? `unknown key; expected one of: ${known.join(", ")}` : "unknown key";
}

/** Same up to case and `-`/`_`, a short prefix or a few edits. */
function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const k = norm(key);
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const n = norm(name);
    const isPrefix = Math.min(k.length, n.length) >= 3 && (n.startsWith(k) || k.startsWith(n));
    const distance = editDistance(k, n);
    const score = isPrefix ? Math.min(distance, 0.5) : distance;
    if (score <= Math.max(1, Math.floor(n.length / 4)) && (!best || score < best.score)) best = { name, score };
  }
  return best?.name;
}

/** Insert, delete, substitute, swap two neighbours. */
function editDistance(a: string, b: string): number {
  const d: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    d.push(row);
    for (let j = 1; j <= b.length; j++) {
      let cost = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cost = Math.min(cost, at(i - 2, j - 2) + 1);
      row.push(cost);
    }
  }
  return at(a.length, b.length);
}
