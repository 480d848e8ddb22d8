// What counts as a leaked secret in a log line or a process's argv: the
// world's secret values (app key, SSH key, registry password, PAT), every
// installation token the slots cached during the run, any 24 characters of a
// secret inside a JIT config the sim issued (its OAuth client id and token,
// its RSA key), and the shapes no output may carry at all (installation
// tokens, JWTs, JIT configs).
import { readFileSync } from "node:fs";

/** A run of this many characters of a JIT config's inner secret is a leak (a secret printed in part). */
const FRAGMENT = 24;

const SHAPES: [string, RegExp][] = [
  ["installation token", /\bghs_[A-Za-z0-9]{36}\b/],
  ["personal access token", /\bghp_[A-Za-z0-9]{36}\b/],
  ["JWT", /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/],
  // base64 of `{".runner"` and of `{"scheme":"OAuth"`: an encoded JIT config and its credentials.
  ["JIT config", /eyIucnVubmVy|eyJzY2hlbWUiOiJPQXV0aC/],
];

export class SecretWatch {
  private readonly values = new Map<string, string>();
  /** Every 24-character window of the JIT configs' inner secrets, and which secret it is of. */
  private readonly fragments = new Map<string, string>();
  private readonly jitConfigsSeen = new Set<string>();

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
      // auth-app's cache entries: "token|createdAt|expiresAt|…".
      const cache = JSON.parse(readFileSync(cachePath, "utf8")) as Record<string, unknown>;
      for (const entry of Object.values(cache)) {
        const token = typeof entry === "string" ? entry.split("|")[0] : undefined;
        if (token) this.values.set(token, "installation token");
      }
    } catch {
      // not written yet, or being replaced
    }
  }

  /**
   * The secrets inside an issued JIT config (sim/github's `GET /_sim/jit-configs`):
   * .credentials' clientId and token and every field of .credentials_rsaparams,
   * watched for in any run of 24 characters. Decoded here, not with lib/.
   */
  addJitConfig(encoded: string): void {
    if (this.jitConfigsSeen.has(encoded)) return;
    this.jitConfigsSeen.add(encoded);
    const files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as Record<string, string>;
    const file = (name: string) => (files[name] ? JSON.parse(Buffer.from(files[name], "base64").toString("utf8")) : {});
    const credentials = (file(".credentials").data ?? {}) as Record<string, unknown>;
    const inner: [string, unknown][] = [
      ["JIT OAuth client id", credentials.clientId],
      ["JIT OAuth token", credentials.token],
      ...Object.entries(file(".credentials_rsaparams") as Record<string, unknown>).map(([k, v]): [string, unknown] => [`JIT RSA parameter ${k}`, v]),
    ];
    for (const [what, value] of inner) {
      if (typeof value !== "string") continue;
      for (let i = 0; i + FRAGMENT <= value.length; i++) this.fragments.set(value.slice(i, i + FRAGMENT), what);
    }
  }

  /** The kinds of secret found in `text`. */
  find(text: string): string[] {
    const found = new Set<string>();
    for (const [what, re] of SHAPES) if (re.test(text)) found.add(what);
    for (const [value, what] of this.values) if (text.includes(value)) found.add(what);
    if (this.fragments.size > 0) {
      // Raw, and as a JSON line escapes a slash (`\/`, `\\/`).
      for (const t of text.includes("\\") ? [text, text.replace(/\\+\//g, "/")] : [text]) {
        for (let i = 0; i + FRAGMENT <= t.length; i++) {
          const what = this.fragments.get(t.slice(i, i + FRAGMENT));
          if (what) found.add(`${what} (24+ characters)`);
        }
      }
    }
    return [...found];
  }
}
