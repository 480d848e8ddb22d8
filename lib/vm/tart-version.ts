// The lowest tart we support, and the one place that says so.
//
// 2.33.0: before it, `tart exec -i` with stdin on a pipe spun one host CPU
// core at 100 % after the pipe reached EOF, for as long as the guest command
// ran (tart issue #1280, fixed by pull #1281: the stdin readability handler
// was never removed). The runner's JIT config reaches the guest on
// `tart exec -i` stdin, and the runner lives for the whole job, so an older
// tart burns a core per slot for every job.
import { MacosRunnerError } from "../core/errors.ts";

export const MIN_TART_VERSION = "2.33.0";
export const MIN_TART_WHY = "older tart spins a CPU core at 100 % for the whole job once `tart exec -i` has read its piped stdin (tart issue #1280)";

/** tart is older than MIN_TART_VERSION, or says a version we cannot compare. */
export class TartVersionError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "unavailable" });
  }
}

export type TartVersionVerdict = { ok: true; version: string } | { ok: false; version: string; problem: string; fix: string };

export const UPGRADE_TART = `upgrade tart to ${MIN_TART_VERSION} or later (brew upgrade cirruslabs/cli/tart)`;

/** Judges what `tart --version` printed: a release at or above the floor, or why not. */
export function judgeTartVersion(output: string): TartVersionVerdict {
  const version = output.trim();
  const parts = /^(\d+)\.(\d+)\.(\d+)$/.exec(version)?.slice(1).map(Number);
  if (!parts) {
    return { ok: false, version, problem: `tart --version printed ${JSON.stringify(version.slice(0, 80))}, not a release version (X.Y.Z) to compare with ${MIN_TART_VERSION}, the lowest supported`, fix: UPGRADE_TART };
  }
  const floor = MIN_TART_VERSION.split(".").map(Number);
  const order = parts.map((p, i) => Math.sign(p - floor[i]!)).find((d) => d !== 0) ?? 0;
  if (order < 0) return { ok: false, version, problem: `tart ${version} is older than ${MIN_TART_VERSION}, the lowest supported: ${MIN_TART_WHY}`, fix: UPGRADE_TART };
  return { ok: true, version };
}
