// Paths in the config: `~` is the user's HOME, relative paths are relative to
// the config file's directory, and secret files must be private like ssh keys.
import { createPrivateKey } from "node:crypto";
import { statSync, type Stats } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { readSecretFile } from "../core/secrets.ts";
import { Invalid } from "./problems.ts";

export interface PathBase {
  /** HOME from the environment the config is read for; undefined when unset. */
  home: string | undefined;
  /** Directory of the config file. */
  dir: string;
}

export function expandPath(raw: string, base: PathBase): string {
  if (raw === "~" || raw.startsWith("~/")) {
    if (!base.home) throw new Invalid(`${raw} starts with ~ but HOME is not set; use an absolute path`);
    return resolve(base.home, raw.slice(2));
  }
  if (raw.startsWith("~")) throw new Invalid(`${raw}: ~user paths are not supported; use ~/... or an absolute path`);
  return isAbsolute(raw) ? resolve(raw) : resolve(base.dir, raw);
}

/** A program: a bare name stays as it is, to be found on PATH; anything with a slash is a path. */
export function commandPath(raw: string, base: PathBase): string {
  return raw.includes("/") ? expandPath(raw, base) : raw;
}

// What a pasted token or key looks like, so it is refused without being echoed.
const INLINE_SECRET = /^(gh[pousr]_|github_pat_)|-----BEGIN /;

/** A file holding a secret: it exists, is a regular file and only its owner may read or write it. */
export function secretFile(raw: string, base: PathBase): string {
  if (INLINE_SECRET.test(raw)) {
    throw new Invalid("holds what looks like a secret itself, not a path; put the secret in a file with mode 0600 and give that file's path");
  }
  const path = expandPath(raw, base);
  const mode = statFile(path).mode & 0o7777;
  if ((mode & 0o077) !== 0) {
    const octal = mode.toString(8).padStart(4, "0");
    throw new Invalid(`${path} is mode ${octal}; secrets must be 0600 (chmod 600 ${shellQuote(path)})`);
  }
  return path;
}

/**
 * The GitHub App's private key: a secret file holding a PEM private key (what
 * the App's settings page downloads). Checked here so that a wrong file is a
 * config problem, not a failed token request in every cycle.
 */
export function appPrivateKeyFile(raw: string, base: PathBase): string {
  const path = secretFile(raw, base);
  const fix = "put the App's private key there (the .pem file from Generate a private key on the App's settings page)";
  let pem: string;
  try {
    pem = readSecretFile(path, "github.app.private_key_path", fix);
  } catch (err) {
    throw new Invalid((err as Error).message);
  }
  let type: string | undefined;
  try {
    type = createPrivateKey({ key: pem, format: "pem" }).asymmetricKeyType;
  } catch {
    // Not echoed: whatever the file holds may be secret.
    throw new Invalid(`${path} does not hold a PEM private key; ${fix}`);
  }
  if (type !== "rsa") throw new Invalid(`${path} holds a key of type ${type ?? "unknown"}, but GitHub App keys are RSA; ${fix}`);
  return path;
}

/** A file that must exist (and be a regular file), secret or not. */
export function existingFile(raw: string, base: PathBase): string {
  const path = expandPath(raw, base);
  statFile(path);
  return path;
}

function statFile(path: string): Stats {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new Invalid(`${path} does not exist; create it or fix the path`);
    throw new Invalid(`cannot check ${path}: ${(err as Error).message}`);
  }
  if (!stats.isFile()) throw new Invalid(`${path} is ${fileKind(stats)}; it must be a file`);
  return stats;
}

/** What a path that is not a regular file is, for messages ("is a directory"). */
export function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

function shellQuote(s: string): string {
  return /^[\w./~@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
