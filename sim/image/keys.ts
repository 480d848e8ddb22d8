// SSH keys for the simulated guest image, made with the system ssh-keygen.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";

/** Generates an unencrypted ed25519 key pair at path (0600) and path.pub; returns the public line. */
export function generateEd25519(path: string, comment: string): string {
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  rmSync(`${path}.pub`, { force: true });
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    throw new Error(`ssh-keygen failed for ${path} (is the OpenSSH client installed?): ${(err as Error).message}`);
  }
  return readFileSync(`${path}.pub`, "utf8").trim();
}
