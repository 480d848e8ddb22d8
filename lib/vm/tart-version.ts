// The lowest tart we support. Before 2.33.0 `tart exec -i` with piped stdin
// spun a host core at 100 % after EOF while the guest command ran (tart #1280):
// the runner gets its JIT config that way and lives for the whole job.
import { MacosRunnerError } from "../core/errors.ts";

export const MIN_TART_VERSION = "2.33.0";
const MIN_TART_WHY = "older tart spins a CPU core at 100 % for the whole job once `tart exec -i` has read its piped stdin (tart issue #1280)";

export class TartVersionError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "unavailable" });
  }
}

type TartVersionVerdict = { ok: true; version: string } | { ok: false; version: string; problem: string; fix: string };

const UPGRADE_TART = `upgrade tart to ${MIN_TART_VERSION} or later (brew upgrade cirruslabs/cli/tart)`;

/** What `tart --version` printed: at or above the floor, or why not. */
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
