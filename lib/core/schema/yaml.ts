// A YAML document as plain data for a schema, and the line each key path is
// written on, so that a problem found in the data can name its line.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { describeValue, type Path, type PathProblem } from "./path.ts";

// Aliases let a small text stand for a huge document ("billion laughs"); no
// config or state file needs more than a few.
const MAX_ALIASES = 1000;

export class YamlText {
  /** Syntax errors (then `data` is not to be checked) and keys that are not plain names. */
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
    // After a syntax error the rest of the tree is guesswork.
    this.data = this.syntaxError ? undefined : this.plain(this.doc.contents, [], true);
  }

  /**
   * The 1-based line of `path`: of its key when it is a mapping key, of the
   * item when it is a list index; undefined when the file does not have it.
   */
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

  /**
   * Mappings become objects, lists arrays, aliases are followed. A mapping
   * value left empty (`key:`), like an empty file, counts as absent: it
   * becomes undefined, while the key stays, so an unknown key is still reported.
   */
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
