// What counts as a leaked secret in a log line or a process's argv: the
// world's secret values (app key, SSH key, registry password, PAT), every
// installation token the slots cached during the run, and the shapes no
// output may carry at all (installation tokens, JWTs, JIT configs).
import { readFileSync } from "node:fs";

const SHAPES: [string, RegExp][] = [
  ["installation token", /\bghs_[A-Za-z0-9]{36}\b/],
  ["personal access token", /\bghp_[A-Za-z0-9]{36}\b/],
  ["JWT", /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  // base64 of `{".runner"` and of `{"scheme":"OAuth"`: an encoded JIT config and its credentials.
  ["JIT config", /eyIucnVubmVy|eyJzY2hlbWUiOiJPQXV0aC/],
];

export class SecretWatch {
  private readonly values = new Map<string, string>();

  /** A secret by value; PEM files by their body lines (a line is enough to leak a key). */
  add(what: string, value: string): void {
    const body = value.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));
    for (const line of body.length > 0 ? body : [value.trim()]) if (line.length >= 8) this.values.set(line, what);
  }

  addFile(what: string, path: string): void {
    this.add(what, readFileSync(path, "utf8"));
  }

  /** Installation tokens the slots cached (github-token-cache.json): read now and then, as they rotate. */
  addCachedTokens(cachePath: string): void {
    try {
      const cache = JSON.parse(readFileSync(cachePath, "utf8")) as Record<string, { token?: unknown }>;
      for (const entry of Object.values(cache)) if (typeof entry.token === "string") this.values.set(entry.token, "installation token");
    } catch {
      // not written yet, or being replaced
    }
  }

  /** The kinds of secret found in `text`. */
  find(text: string): string[] {
    const found = new Set<string>();
    for (const [what, re] of SHAPES) if (re.test(text)) found.add(what);
    for (const [value, what] of this.values) if (text.includes(value)) found.add(what);
    return [...found];
  }
}
