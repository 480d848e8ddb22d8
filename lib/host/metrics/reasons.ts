// Maps what ended a cycle to the closed set of failure reasons the metrics
// label with, so a new error message never becomes a new time series.
import { ConfigError } from "../../config/index.ts";
import {
  GitHubAuthError, GitHubNotFoundError, GitHubPermissionError, GitHubRateLimitError, GitHubRejectedError, GitHubUnavailableError,
} from "../../github/errors.ts";
import { MacosRunnerError, type ExitKind } from "../../core/errors.ts";
import { HostDegradedError, TartError, TartMissingError, VmLimitError } from "../../vm/tart.ts";
import type { FailureReason } from "./definitions.ts";

/** A run that ended badly fails its cycle with the run's outcome as its kind. */
const BY_KIND: Partial<Record<ExitKind, FailureReason>> = { lost: "ssh_lost", "host-key": "host_key", "local-network": "local_network", timeout: "job_timeout", "no-job": "no_job" };

export function failureReason(err: unknown): FailureReason {
  if (err instanceof HostDegradedError) return "host_degraded";
  if (err instanceof VmLimitError) return "vm_limit";
  if (err instanceof TartMissingError) return "tart_missing";
  if (err instanceof TartError) return err.command === "clone" || err.command === "set" ? "clone" : err.command === "run" ? "vm_start" : "tart";
  if (err instanceof GitHubAuthError) return "github_auth";
  if (err instanceof GitHubPermissionError) return "github_permission";
  if (err instanceof GitHubNotFoundError) return "github_not_found";
  if (err instanceof GitHubRateLimitError) return "github_rate_limit";
  if (err instanceof GitHubRejectedError) return "github_rejected";
  if (err instanceof GitHubUnavailableError) return "github_unavailable";
  if (err instanceof ConfigError) return "config";
  const byKind = err instanceof MacosRunnerError ? BY_KIND[err.kind] : undefined;
  if (byKind) return byKind;
  // Step errors defined beside their scripts, known by name to keep lib/ free of scripts/.
  const name = (err as Error | undefined)?.name;
  if (name === "BootError") return "boot_timeout";
  return "other";
}
