// A persistent cache for @octokit/auth-app installation tokens, shared by the
// slots of a host, so a steady-state cycle costs one API call (the JIT config).
// auth-app never checks the expiry of what get() returns (contracts/github.md
// §2), so get() drops tokens that expire within the margin itself.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic } from "../fs.ts";

/** Tokens closer to expiry than this are not reused (a job start must not race the expiry). */
export const EXPIRY_MARGIN_MS = 10 * 60 * 1000;

type Entries = Record<string, string>;

/** auth-app's Cache type says get() returns a string; at run time a miss is
 * undefined (its own LRU does the same), so the type is widened here. */
export interface TokenCache {
  get(key: string): string;
  set(key: string, value: string): void;
}

export function fileTokenCache(path: string, now: () => number = Date.now): TokenCache {
  const read = (): Entries => {
    try {
      return JSON.parse(readFileSync(path, "utf8")) as Entries;
    } catch {
      return {};
    }
  };
  return {
    get(key: string): string {
      const value = read()[key];
      if (!value) return undefined as unknown as string;
      // value: token|createdAt|expiresAt|repositorySelection|permissions|singleFileName
      const expiresAt = Date.parse(value.split("|")[2] ?? "");
      return (Number.isFinite(expiresAt) && expiresAt - now() > EXPIRY_MARGIN_MS ? value : undefined) as string;
    },
    set(key: string, value: string): void {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileAtomic(path, JSON.stringify({ ...read(), [key]: value }), 0o600);
    },
  };
}
