// OCI references and their place in the cache (contracts/tart.md §1, §4):
// host(:port)?/namespace(:tag|@sha256:hex)?, tag defaults to latest; a name
// with no `/` is local. A tag is a symlink to its digest directory.
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ociCacheDir } from "./home.ts";
import { TartError } from "./errors.ts";

export interface RemoteName {
  host: string; // host or host:port
  namespace: string;
  /** A tag, or a digest `sha256:<hex>`. */
  reference: string;
}

const REMOTE = /^([A-Za-z0-9.-]+(?::\d+)?)\/([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(sha256:[0-9a-f]{64}))?$/;

/** Parses a remote name; undefined for a local name. */
export function parseRemoteName(name: string): RemoteName | undefined {
  const [, host, namespace, tag, digest] = REMOTE.exec(name) ?? [];
  if (host === undefined || namespace === undefined) return undefined;
  return { host, namespace, reference: digest ?? tag ?? "latest" };
}

export function requireRemoteName(name: string): RemoteName {
  const remote = parseRemoteName(name);
  if (!remote) throw new TartError(`failed to parse remote name: ${name}`);
  return remote;
}

export const isDigest = (reference: string) => reference.startsWith("sha256:");

export function formatRemoteName(r: RemoteName): string {
  return `${r.host}/${r.namespace}${isDigest(r.reference) ? "@" : ":"}${r.reference}`;
}

export const hostDir = (host: string) => join(ociCacheDir(), encodeURIComponent(host));
export const namespaceDir = (r: RemoteName) => join(hostDir(r.host), r.namespace);
export const cachePath = (r: RemoteName) => join(namespaceDir(r), r.reference);

/** The digest directory a tag links to (or the digest directory itself), if it exists. */
export function resolveCached(r: RemoteName): string | undefined {
  const path = cachePath(r);
  return existsSync(path) ? realpathSync(path) : undefined;
}

export function isLinked(tag: RemoteName, digestDir: string): boolean {
  try {
    return lstatSync(cachePath(tag)).isSymbolicLink() && join(namespaceDir(tag), readlinkSync(cachePath(tag))) === digestDir;
  } catch {
    return false;
  }
}

export interface CacheEntry {
  name: string; // host/ns:tag or host/ns@sha256:…
  path: string;
  isSymlink: boolean;
}

/** Every tag link and digest directory in the cache. */
export function cacheEntries(): CacheEntry[] {
  const root = ociCacheDir();
  if (!existsSync(root)) return [];
  const out: CacheEntry[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      const rel = relative(root, path).split("/");
      const [hostDir = ""] = rel;
      const host = decodeURIComponent(hostDir);
      const ns = rel.slice(1, -1).join("/");
      if (e.isSymbolicLink()) {
        out.push({ name: `${host}/${ns}:${e.name}`, path, isSymlink: true });
      } else if (e.isDirectory() && e.name.startsWith("sha256:")) {
        out.push({ name: `${host}/${ns}@${e.name}`, path, isSymlink: false });
      } else if (e.isDirectory()) {
        walk(path);
      }
    }
  };
  walk(root);
  return out;
}

/** Drops dangling tag links and digest directories nothing links to (unless pulled by digest). */
export function gcCache(): void {
  const entries = cacheEntries();
  const linked = new Set<string>();
  for (const e of entries.filter((x) => x.isSymlink)) {
    try {
      linked.add(join(e.path, "..", readlinkSync(e.path)));
      statSync(e.path);
    } catch {
      rmSync(e.path, { force: true });
    }
  }
  for (const e of entries.filter((x) => !x.isSymlink)) {
    if (!linked.has(e.path) && !existsSync(join(e.path, ".explicitly-pulled"))) rmSync(e.path, { recursive: true, force: true });
  }
}
