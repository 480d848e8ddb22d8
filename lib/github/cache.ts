// What lib/github remembers between cycles, in 0600 JSON files shared by the
// slots, keyed by GitHub and scope (a state dir may serve several over its life).
// A bad entry reads as absent and a bad file as empty: it costs a lookup, not a slot.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/index.ts";
import { StateIoError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";

type GitHubConfig = Config["github"];

export const stateFiles = {
  tokens: (stateDir: string) => join(stateDir, "github-token-cache.json"),
  installations: (stateDir: string) => join(stateDir, "github-installation.json"),
  groups: (stateDir: string) => join(stateDir, "github-runner-groups.json"),
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

/** A job start must not race the token's expiry. */
export const EXPIRY_MARGIN_MS = 10 * 60 * 1000;

/**
 * auth-app's token cache: auth-app uses whatever get() returns (only its default
 * cache expires entries), so get() drops a token near the expiry in its
 * `token|createdAt|expiresAt|...` string, and any entry it cannot read.
 */
export class TokenCache {
  private readonly file: JsonMapFile<string>;
  /** A 401 on one of these may mean it was revoked. */
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
