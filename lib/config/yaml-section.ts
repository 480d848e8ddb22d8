// Typed reads from a parsed YAML config that collect problems instead of
// throwing: every problem names its key path and, where the YAML has a node
// for it, the 1-based line.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type YAMLMap } from "yaml";
import { DurationError, parseDuration } from "../duration.ts";
import { Invalid, type ConfigProblem } from "./problems.ts";

/** A value as meant (`node`, aliases resolved), as written (`at`, for its line), and its key. */
interface Entry {
  node: Node;
  at: Node;
  key?: Node;
}

/** A list item that passed the type check; `report` files a problem at its path and line. */
export interface Item {
  value: string;
  report(message: string): void;
}

export class ConfigDoc {
  readonly problems: ConfigProblem[] = [];
  private readonly lines = new LineCounter();
  private readonly doc: Document.Parsed;

  constructor(text: string) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    for (const err of this.doc.errors) {
      this.problems.push({ path: "", line: this.lines.linePos(err.pos[0]).line, message: `invalid YAML: ${err.message}` });
    }
  }

  /** The top-level mapping, or undefined once the reason there is none is reported. */
  root(keys: readonly string[]): Section | undefined {
    // After a syntax error the rest of the tree is guesswork; report only that.
    if (this.problems.length > 0) return undefined;
    const top = this.resolve(this.doc.contents);
    if (top === undefined) {
      this.report("", undefined, "the file is empty; it needs at least the github:, image: and vm: sections");
      return undefined;
    }
    if (!isMap(top)) {
      this.report("", top, `the top level must be a mapping of sections (${keys.join(":, ")}:), got ${describe(top)}`);
      return undefined;
    }
    return new Section(this, "", { node: top, at: top }, keys);
  }

  report(path: string, at: Node | undefined, message: string): void {
    const line = at?.range ? this.lines.linePos(at.range[0]).line : undefined;
    this.problems.push(line === undefined ? { path, message } : { path, line, message });
  }

  /** The node a value stands for: aliases followed, and an empty (null) value counts as absent. */
  resolve(value: unknown): Node | undefined {
    const node = isAlias(value) ? value.resolve(this.doc) : value;
    if (!node || (isScalar(node) && node.value === null)) return undefined;
    return node as Node;
  }
}

/** One mapping of the config (the top level, `github`, `vm.ssh`, ...), with its known keys. */
export class Section {
  private readonly map: YAMLMap | undefined;

  constructor(
    private readonly doc: ConfigDoc,
    readonly path: string,
    private readonly self: Entry | undefined,
    keys: readonly string[],
  ) {
    this.map = self && isMap(self.node) ? self.node : undefined;
    for (const pair of this.map?.items ?? []) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key !== "string") doc.report(this.path, pair.key as Node, `keys must be plain names, got ${describe(pair.key as Node)}`);
      else if (!keys.includes(key)) doc.report(this.keyPath(key), pair.key as Node, unknownKey(key, keys));
    }
  }

  /** True when the section is written in the file (even with a wrong type, which is already reported). */
  get present(): boolean {
    return this.self !== undefined;
  }

  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.entry(key) !== undefined;
  }

  /** Files a problem at `key` (its line when the key is written). */
  report(key: string, message: string): void {
    this.doc.report(this.keyPath(key), this.entry(key)?.at, message);
  }

  /** Files a problem about the section as a whole, at its key's line. */
  reportSelf(message: string): void {
    this.doc.report(this.path, this.self?.key ?? this.self?.at, message);
  }

  /** Reports `key` as missing, unless it is there or this section is itself the wrong type. */
  require(key: string, hint?: string): void {
    if (this.has(key) || (this.present && !this.map)) return;
    this.report(key, `missing (required)${hint ? `; ${hint}` : ""}`);
  }

  section(key: string, keys: readonly string[]): Section {
    const entry = this.entry(key);
    if (entry && !isMap(entry.node)) this.report(key, `must be a mapping of ${keys.join(", ")}, got ${describe(entry.node)}`);
    return new Section(this.doc, this.keyPath(key), entry, keys);
  }

  /** A non-empty string, passed through `convert`, which throws Invalid to reject it. */
  string(key: string): string | undefined;
  string<T>(key: string, convert: (s: string) => T): T | undefined;
  string<T>(key: string, convert?: (s: string) => T): T | string | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    const { node } = entry;
    if (!isScalar(node) || typeof node.value !== "string") {
      const hint = isScalar(node) ? ` (a ${typeof node.value}; quote it if you mean the text)` : "";
      this.report(key, `must be a string, got ${describe(node)}${hint}`);
      return undefined;
    }
    if (node.value === "") {
      this.report(key, "must not be empty");
      return undefined;
    }
    return convert ? this.converted(key, node.value, convert) : node.value;
  }

  integer(key: string, range: { min: number; max?: number; expect?: string }): number | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    const { min, max = Number.MAX_SAFE_INTEGER } = range;
    const value = isScalar(entry.node) ? entry.node.value : undefined;
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max) return value;
    const expect =
      range.expect ?? (range.max !== undefined ? `an integer from ${min} to ${max}` : min === 1 ? "a positive integer" : `an integer of at least ${min}`);
    const hint = typeof value === "string" && /^-?\d+$/.test(value) ? " (a string; remove the quotes)" : "";
    this.report(key, `must be ${expect}, got ${describe(entry.node)}${hint}`);
    return undefined;
  }

  boolean(key: string): boolean | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    const value = isScalar(entry.node) ? entry.node.value : undefined;
    if (typeof value === "boolean") return value;
    const hint = value === "true" || value === "false" ? " (a string; remove the quotes)" : "";
    this.report(key, `must be true or false, got ${describe(entry.node)}${hint}`);
    return undefined;
  }

  /** A duration string ("90s", "3m", "1h30m") longer than zero, in milliseconds. */
  duration(key: string): number | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    const forms = "a duration such as 90s, 3m, 6h or 1h30m (units ms, s, m, h)";
    const value = isScalar(entry.node) ? entry.node.value : undefined;
    if (typeof value !== "string") {
      const hint = typeof value === "number" ? ` (a number; add a unit, e.g. ${value}s)` : "";
      this.report(key, `must be ${forms}, got ${describe(entry.node)}${hint}`);
      return undefined;
    }
    return this.string(key, (s) => {
      let ms: number;
      try {
        ms = parseDuration(s);
      } catch (err) {
        if (err instanceof DurationError) throw new Invalid(`must be ${forms}, got ${JSON.stringify(s)}`);
        throw err;
      }
      if (ms <= 0) throw new Invalid(`must be longer than zero, got ${JSON.stringify(s)}`);
      return ms;
    });
  }

  /** A list of `min`..`max` strings; items of the wrong type are reported and left out. */
  strings(key: string, count: { min: number; max: number }): Item[] | undefined {
    const entry = this.entry(key);
    if (!entry) return undefined;
    if (!isSeq(entry.node)) {
      this.report(key, `must be a list of strings, e.g. [a, b], got ${describe(entry.node)}`);
      return undefined;
    }
    const raw = entry.node.items;
    if (raw.length < count.min || raw.length > count.max) {
      this.report(key, `must have ${count.min} to ${count.max} entries, got ${raw.length}`);
    }
    const items: Item[] = [];
    raw.forEach((itemAt, i) => {
      const path = `${this.keyPath(key)}[${i}]`;
      const at = (itemAt as Node | null) ?? entry.at;
      const node = this.doc.resolve(itemAt);
      if (!node) this.doc.report(path, at, "must not be empty");
      else if (!isScalar(node) || typeof node.value !== "string") {
        const hint = isScalar(node) ? ` (a ${typeof node.value}; quote it if you mean the text)` : "";
        this.doc.report(path, at, `must be a string, got ${describe(node)}${hint}`);
      } else items.push({ value: node.value, report: (message) => this.doc.report(path, at, message) });
    });
    return items;
  }

  private converted<T>(key: string, value: string, convert: (s: string) => T): T | undefined {
    try {
      return convert(value);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      this.report(key, err.message);
      return undefined;
    }
  }

  /** The value at `key`; an empty value or an alias to nothing counts as absent. */
  private entry(key: string): Entry | undefined {
    const pair = this.map?.items.find((p) => isScalar(p.key) && p.key.value === key);
    const node = pair ? this.doc.resolve(pair.value) : undefined;
    return node ? { node, at: pair!.value as Node, key: pair!.key as Node } : undefined;
  }
}

/** A value as an error message shows it: strings quoted (and cut when long), collections by kind. */
export function describe(node: Node): string {
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (!isScalar(node)) return "an unsupported value";
  if (typeof node.value !== "string") return String(node.value);
  const text = node.value.length > 60 ? `${node.value.slice(0, 57)}...` : node.value;
  return JSON.stringify(text);
}

function unknownKey(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  return near ? `unknown key; did you mean ${near}?` : `unknown key; expected one of: ${known.join(", ")}`;
}

/** The known key a typo most likely meant: same up to case, `-`/`_`, a short prefix or a few edits. */
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

/** Edits (insert, delete, substitute, swap two neighbours) from a to b. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
