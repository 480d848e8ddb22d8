// What lib/github remembers between cycles, in 0600 JSON files under
// host.state_dir shared by the host's slots (installation tokens and ids,
// runner group ids), each entry keyed by the GitHub and scope it belongs to:
// a state directory may serve more than one over its life. Writes are
// atomic; entries that fail their check (an older format, a hand edit) read
// as absent, and an unparsable file as empty, so a bad cache costs a lookup, not a slot.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/index.ts";
import { StateIoError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";

type GitHubConfig = Config["github"];

export const stateFiles = {
  /** Installation tokens, as auth-app serializes them, by installation. */
  tokens: (stateDir: string) => join(stateDir, "github-token-cache.json"),
  /** The app's installation id for github.url, when github.app.installation_id is not set. */
  installations: (stateDir: string) => join(stateDir, "github-installation.json"),
  /** Runner group ids by name. */
  groups: (stateDir: string) => join(stateDir, "github-runner-groups.json"),
  /** Held while one slot fetches credentials, so the other reuses them. */
  credentialsLock: (stateDir: string) => join(stateDir, "github-credentials.lock"),
};

export const stateKeys = {
  /** `authAppKey`: auth-app's cache key, the installation id. */
  token: (github: GitHubConfig, authAppKey: string | number) => `${github.apiUrl} installation ${authAppKey}`,
  installation: (github: GitHubConfig) => `${github.apiUrl} ${github.url}`,
  group: (github: GitHubConfig, name: string) => `${github.apiUrl} ${github.url} ${name}`,
};

export class JsonMapFile<V> {
  constructor(
    readonly path: string,
    private readonly valid: (v: unknown) => v is V,
  ) {}

  get(key: string): V | undefined {
    const v = this.read()[key];
    return this.valid(v) ? v : undefined;
  }

  set(key: string, value: V): void {
    this.write({ ...this.read(), [key]: value });
  }

  delete(key: string): void {
    const { [key]: _dropped, ...rest } = this.read();
    this.write(rest);
  }

  private read(): Record<string, unknown> {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new StateIoError(`cannot read ${this.path}: ${(err as Error).message}`, err);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }

  private write(entries: Record<string, unknown>): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.path, JSON.stringify(entries), 0o600);
    } catch (err) {
      throw new StateIoError(`cannot write ${this.path}: ${(err as Error).message}`, err);
    }
  }
}

export const isPositiveInteger = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/** Tokens closer to expiry than this are not reused (a job start must not race the expiry). */
export const EXPIRY_MARGIN_MS = 10 * 60 * 1000;

/**
 * auth-app's installation token cache, in a 0600 file shared by the host's
 * slots. auth-app stores its own `token|createdAt|expiresAt|...` strings and
 * uses whatever get() returns: only its default in-memory cache expires
 * entries (59 min after set). So get() drops a token within EXPIRY_MARGIN_MS
 * of the expiry it reads from the string, and any entry it cannot read.
 */
export class TokenCache {
  private readonly file: JsonMapFile<string>;
  /** Tokens get() handed out (not fetched by this process just now): a 401 on one may mean it was revoked. */
  readonly handedOut = new Set<string>();

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = new JsonMapFile(path, (v): v is string => typeof v === "string");
  }

  get(key: string): string | undefined {
    const value = this.file.get(key);
    const [token, , expiresAt] = value?.split("|") ?? [];
    if (!token || !(Date.parse(expiresAt ?? "") - this.now() > EXPIRY_MARGIN_MS)) return undefined;
    this.handedOut.add(token);
    return value;
  }

  set(key: string, value: string): void {
    this.file.set(key, value);
  }
}
