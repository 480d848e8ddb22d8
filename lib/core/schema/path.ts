// Key paths and values as problem messages show them.

/** Keys and list indices from the top of a document down to a value. */
export type Path = readonly PropertyKey[];

/** A problem found at `path`; `line` when the document says where. */
export interface PathProblem {
  path: Path;
  /** Unknown for a document that is not YAML, or a problem with no node to point at. */
  line?: number | undefined;
  message: string;
}

/** "runner.labels[2]"; "" for the document as a whole. */
export function formatPath(path: Path): string {
  return path.reduce<string>((out, seg) => (typeof seg === "number" ? `${out}[${seg}]` : out ? `${out}.${String(seg)}` : String(seg)), "");
}

/** A value as a message shows it: strings quoted (and cut when long), collections by kind. */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object" && value !== null) return "a mapping";
  if (typeof value !== "string") return String(value);
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
}
