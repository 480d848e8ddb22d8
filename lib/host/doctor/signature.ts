// The running binary's code signature: on macOS what the kernel will accept
// (`codesign --verify --strict`); elsewhere, a Mach-O's page hashes are
// checked by reading it (lib/host/codesign.ts), anything else is skipped.
import { openSync, readSync, closeSync } from "node:fs";
import { isMachO, verifyCodeSignatureFile } from "../codesign.ts";
import type { CommandRunner } from "../../core/proc.ts";
import { fail, pass, skip, type Check, type CheckResult } from "./types.ts";

/** By absolute path: a codesign earlier on PATH is not Apple's. */
export const CODESIGN = "/usr/bin/codesign";

export const signatureCheck: Check = (ctx) => checkBinarySignature(ctx.binaryPath, ctx.platform, ctx.run);

export async function checkBinarySignature(path: string | undefined, platform: NodeJS.Platform, run: CommandRunner): Promise<CheckResult[]> {
  if (!path) return [skip("signature", "not the compiled binary (run from source)")];
  const resign = `re-sign it ad hoc: ${CODESIGN} --force --sign - ${path} (the playbook does this on each run), or copy a fresh build`;
  if (platform === "darwin") {
    const r = await run([CODESIGN, "--verify", "--strict", path]);
    if (r.code === 0) return [pass("signature", `codesign --verify --strict accepts ${path}`)];
    const why = r.timedOut ? "timed out" : r.stderr.split("\n").filter(Boolean).join("; ") || `exit ${r.code}`;
    return [fail("signature", `codesign --verify --strict rejects ${path}: ${why}; launchd's agents would be killed at launch (Killed: 9)`, resign)];
  }
  if (!isMachO(head(path))) return [skip("signature", `${path} is not a Mach-O binary (this is ${platform}); macOS hosts check their own`)];
  try {
    const [slice] = verifyCodeSignatureFile(path);
    const cd = slice!.codeDirectories[0]!;
    return [pass("signature", `${path}: ${cd.pages} ${cd.hashType} page hashes match the file`)];
  } catch (err) {
    return [fail("signature", (err as Error).message, resign)];
  }
}

function head(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const bytes = new Uint8Array(4);
    return bytes.subarray(0, readSync(fd, bytes, 0, 4, 0));
  } finally {
    closeSync(fd);
  }
}
