// What `install` checks before it touches a host: macOS, a GUI session for
// the user (agents live in gui/<uid>), tart where the agents will look and
// at the lowest supported version or later, and the binaries the agents run.
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { MacosRunnerError } from "../../core/errors.ts";
import type { CommandRunner } from "../../core/proc.ts";
import { TartMissingError } from "../../vm/tart.ts";
import { judgeTartVersion, TartVersionError } from "../../vm/tart-version.ts";
import { printDomainArgv } from "./launchctl.ts";

export class NotMacosError extends MacosRunnerError {
  constructor(platform: string) {
    super(`install must run on the macOS host that serves the slots (this is ${platform}); use --dry-run to see what it would do`, { kind: "unavailable" });
  }
}

export class NoGuiSessionError extends MacosRunnerError {
  constructor(uid: number, detail: string) {
    super(
      `no GUI session for uid ${uid} ('launchctl print gui/${uid}' failed: ${detail}): VMs need the user's Aqua session. ` +
        `Enable automatic login for this user (System Settings > Users & Groups > Automatically log in as), log in once, then run install again`,
      { kind: "unavailable" },
    );
  }
}

export class BinaryMissingError extends MacosRunnerError {
  constructor(name: string, binDir: string) {
    super(`${name} not found in ${binDir}: copy dist/darwin-arm64/macos-runner there and link ${name} to it (ansible/site.yml does), or pass --bin-dir`, { kind: "unavailable" });
  }
}

export function checkMacos(platform: string = process.platform): void {
  if (platform !== "darwin") throw new NotMacosError(platform);
}

export async function checkGuiSession(run: CommandRunner, uid: number): Promise<void> {
  const r = await run(printDomainArgv(uid));
  if (r.code !== 0) throw new NoGuiSessionError(uid, r.stderr.split("\n")[0] || `exit ${r.code}`);
}

/** Finds tart the way the agents will: host.tart_path as a path, or a name looked up in the agents' PATH. */
export function checkTart(tartPath: string, agentPath: string): string {
  const candidates = tartPath.includes("/") ? [tartPath] : agentPath.split(":").filter(Boolean).map((dir) => join(dir, tartPath));
  const found = candidates.find(isExecutableFile);
  if (!found) {
    const where = tartPath.includes("/") ? `"${tartPath}"` : `"${tartPath}" in the agents' PATH (${agentPath})`;
    throw new TartMissingError(
      `tart not found at ${where}: install it (brew install cirruslabs/cli/tart) or fix host.tart_path`,
      "install",
      127,
      "",
      "unavailable",
    );
  }
  return found;
}

/** Refuses a tart below the supported floor, or one whose version cannot be read. */
export async function checkTartVersion(run: CommandRunner, tartPath: string): Promise<string> {
  const r = await run([tartPath, "--version"]);
  if (r.code !== 0) throw new TartVersionError(`${tartPath} --version failed (${r.stderr.split("\n")[0] || `exit ${r.code}`}): reinstall tart (brew reinstall cirruslabs/cli/tart)`);
  const verdict = judgeTartVersion(r.stdout);
  if (!verdict.ok) throw new TartVersionError(`${verdict.problem} (${tartPath}): ${verdict.fix}, then run install again`);
  return verdict.version;
}

export function checkBinary(binDir: string, name: string): void {
  if (!isExecutableFile(join(binDir, name))) throw new BinaryMissingError(name, binDir);
}

export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
