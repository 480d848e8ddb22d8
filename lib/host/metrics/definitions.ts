// Every metric a slot writes. Names follow ARC's listener (gha-runner-scale-set)
// where the concept is the same. Labels stay low-cardinality: never a job or VM name.
import { ConfigError } from "../../config/index.ts";
import { MacosRunnerError, type ExitKind } from "../../core/errors.ts";
import {
  GitHubAuthError, GitHubNotFoundError, GitHubPermissionError, GitHubRateLimitError, GitHubRejectedError, GitHubUnavailableError,
} from "../../github/errors.ts";
import { BootError } from "../../vm/boot.ts";
import { HostDegradedError, TartError, TartMissingError, VmLimitError } from "../../vm/tart.ts";

export type MetricType = "counter" | "gauge" | "histogram";

export const SLOT_PHASES = ["idle", "recover", "token", "clone", "boot", "run", "job", "cleanup", "backoff", "done", "failed"] as const;
export type SlotPhase = (typeof SLOT_PHASES)[number];

/** Label `phase` of macos_runner_phase_duration_seconds. */
export const STEPS = ["token", "clone", "boot_to_ip", "boot_to_ssh", "runner_to_listening", "cleanup"] as const;
export type Step = (typeof STEPS)[number];

/** A closed set, so the `reason` label stays small. */
export const FAILURE_REASONS = [
  "vm_limit", "host_degraded", "no_ip", "boot_timeout", "vm_start", "clone", "tart_missing", "tart",
  "github_auth", "github_permission", "github_not_found", "github_rate_limit", "github_unavailable", "github_rejected",
  "ssh_lost", "host_key", "local_network", "job_timeout", "no_job", "cleanup", "config", "other",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

const STEP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];
const TURNAROUND_BUCKETS = [0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600];
const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400];
// ARC's runtimeBuckets, extended to runner.job_timeout's 6 h default.
const JOB_BUCKETS = [
  0.01, 0.05, 0.1, 0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120,
  150, 180, 210, 240, 300, 360, 420, 480, 540, 600, 900, 1200, 1800, 2400, 3000, 3600, 5400, 7200, 10800, 14400, 21600,
];

export interface Definition {
  type: MetricType;
  help: string;
  /** Labels beyond host and slot. */
  labels: readonly string[];
  buckets?: readonly number[];
}

export const METRICS = {
  macos_runner_phase_duration_seconds: {
    type: "histogram", labels: ["phase"], buckets: STEP_BUCKETS,
    help: "Duration of a cycle step: token, clone, boot_to_ip, boot_to_ssh, runner_to_listening (runner start to Listening for Jobs), cleanup.",
  },
  macos_runner_job_wait_seconds: {
    type: "histogram", labels: [], buckets: WAIT_BUCKETS,
    help: "Time a listening runner waited until GitHub handed it a job.",
  },
  macos_runner_turnaround_seconds: {
    type: "histogram", labels: [], buckets: TURNAROUND_BUCKETS,
    help: "Job finished to the slot's next runner listening for jobs.",
  },
  gha_job_execution_duration_seconds: {
    type: "histogram", labels: ["job_result"], buckets: JOB_BUCKETS,
    help: "Time spent executing workflow jobs (Running job to completed), by result.",
  },
  gha_started_jobs_total: { type: "counter", labels: [], help: "Total number of jobs started." },
  gha_completed_jobs_total: { type: "counter", labels: ["job_result"], help: "Total number of jobs completed, by result." },
  gha_busy_runners: { type: "gauge", labels: [], help: "Registered runners running a job (0 or 1 per slot)." },
  gha_idle_runners: { type: "gauge", labels: [], help: "Registered runners listening for a job (0 or 1 per slot)." },
  macos_runner_failures_total: { type: "counter", labels: ["phase", "reason"], help: "Failed cycles, by the phase they failed in and why." },
  macos_runner_lost_jobs_total: { type: "counter", labels: [], help: "Jobs lost because the VM or the SSH session died while they ran." },
  macos_runner_runners_replaced_total: {
    type: "counter", labels: [],
    help: "Runners GitHub retired before any job reached them that were replaced by a new runner in the same VM (no new VM).",
  },
  macos_runner_ghost_runners: { type: "gauge", labels: [], help: "Runners GitHub still calls busy after their VM is gone, pending deletion." },
  macos_runner_host_degraded: { type: "gauge", labels: [], help: "1 while the slot finds the host unable to start VMs with fewer than two running (macOS leaked VM places: reboot the Mac), else 0." },
  macos_runner_consecutive_failures: { type: "gauge", labels: [], help: "Failed cycles in a row (0 after a good cycle); drives the backoff." },
  macos_runner_backoff_until_timestamp_seconds: { type: "gauge", labels: [], help: "When the current backoff ends (Unix time; 0 when not backing off)." },
  macos_runner_slot_phase: { type: "gauge", labels: ["phase"], help: "The slot's current phase (1 for the current one, 0 for the others)." },
  macos_runner_phase_started_timestamp_seconds: { type: "gauge", labels: [], help: "When the slot entered its current phase (Unix time)." },
  macos_runner_last_job_timestamp_seconds: { type: "gauge", labels: [], help: "When the slot's last job completed, whatever its result (Unix time)." },
  macos_runner_last_success_timestamp_seconds: { type: "gauge", labels: [], help: "When the slot's last successful job completed (Unix time)." },
  macos_runner_image_info: { type: "gauge", labels: ["image_digest", "path"], help: "The golden image digest in use and the start path (cold, next-vm, snapshot); value 1." },
  macos_runner_runner_version_info: { type: "gauge", labels: ["runner_version"], help: "The actions runner version baked into the image in use; value 1." },
  macos_runner_image_pinned_timestamp_seconds: { type: "gauge", labels: [], help: "When the image in use was pinned (image.lock pinned_at, Unix time)." },
} as const satisfies Record<string, Definition>;

export type MetricName = keyof typeof METRICS;

// A run that ended badly fails its cycle with the run's outcome as its kind.

const BY_KIND: Partial<Record<ExitKind, FailureReason>> = { lost: "ssh_lost", "host-key": "host_key", "local-network": "local_network", timeout: "job_timeout", "no-job": "no_job" };

/** In order: a subclass before its base. */
const BY_CLASS: [abstract new (...args: never[]) => Error, FailureReason][] = [
  [HostDegradedError, "host_degraded"], [VmLimitError, "vm_limit"], [TartMissingError, "tart_missing"], [GitHubAuthError, "github_auth"],
  [GitHubPermissionError, "github_permission"], [GitHubNotFoundError, "github_not_found"], [GitHubRateLimitError, "github_rate_limit"],
  [GitHubRejectedError, "github_rejected"], [GitHubUnavailableError, "github_unavailable"], [ConfigError, "config"],
];

export function failureReason(err: unknown): FailureReason {
  const byClass = BY_CLASS.find(([type]) => err instanceof type)?.[1];
  if (byClass) return byClass;
  if (err instanceof TartError) return err.command === "clone" || err.command === "set" ? "clone" : err.command === "run" ? "vm_start" : "tart";
  const byKind = err instanceof MacosRunnerError ? BY_KIND[err.kind] : undefined;
  if (byKind) return byKind;
  return err instanceof BootError ? "boot_timeout" : "other";
}
