// Shapes shared by the sim server, its control API and the typed client.

export type Permission = "read" | "write";

/** Where runners live: an org, a repo ("owner/name") or an enterprise. */
export type ScopeKind = "orgs" | "repos" | "enterprises";

export interface InstallationOption {
  /** Org or user login the app is installed on. */
  account: string;
  /** Defaults to administration + organization_self_hosted_runners (write) and metadata (read). */
  permissions?: Record<string, Permission>;
}

export interface GitHubSimOptions {
  /** Orgs to create (default ["acme"]). */
  orgs?: string[];
  /** Repos "owner/name" to create (default ["acme/app"]); an owner that is not an org is a user. */
  repos?: string[];
  /** Enterprises to create (default ["acme-ent"]). */
  enterprises?: string[];
  /** App installations (default: one per org and per user owning a repo, full permissions). */
  installations?: InstallationOption[];
  /** Extra runner groups (after "Default", id 1) created in every org and enterprise. */
  runnerGroups?: string[];
  /** Installation token lifetime (default one hour). */
  tokenTtlMs?: number;
  /** Offset of the sim clock from the host clock (tokens, JWT checks, Date header). */
  clockOffsetMs?: number;
  /** Runners per group before generate-jitconfig answers 422 (default 10000). */
  groupCapacity?: number;
  /** Primary rate-limit budget per hour (default 5000). */
  rateLimit?: number;
  /** A broker session holding no open poll is dropped after this long without contact (default 10 s). */
  sessionLeaseMs?: number;
  /** How long a runner whose session went silent while holding a job stays busy before the job fails (default 180000: 3 min). */
  lostRunnerBusyMs?: number;
  /** Delay before a queued job is handed to a listening runner (default 50). */
  assignDelayMs?: number;
  /** An idle JIT runner that never took a job is deleted this long after it was registered (default 120000: 2 min). */
  idleJitRunnerRetireMs?: number;
  /** Validate every GitHub API response against the OpenAPI description; violations land in `violations`. */
  validate?: boolean | import("./openapi.ts").ResponseValidator;
  /** Port to bind on 127.0.0.1 (default: a random free port). */
  port?: number | undefined;
}

/** What PUT /_sim/settings can change while the sim runs; see GitHubSimOptions. */
export interface SimSettings {
  lostRunnerBusyMs: number;
  assignDelayMs: number;
  idleJitRunnerRetireMs: number;
}

export const DEFAULT_SETTINGS: SimSettings = { lostRunnerBusyMs: 180_000, assignDelayMs: 50, idleJitRunnerRetireMs: 120_000 };

export interface RunnerLabel {
  id: number;
  name: string;
  type: "read-only" | "custom";
}

export interface RunnerState {
  id: number;
  name: string;
  /** "orgs/acme", "repos/acme/app" or "enterprises/acme-ent". */
  scope: string;
  runner_group_id: number;
  os: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  labels: RunnerLabel[];
  version: string | null;
}

export type JobStatus = "queued" | "in_progress" | "completed";
export type JobResult = "Succeeded" | "Failed" | "Canceled";

export interface JobState {
  id: number;
  name: string;
  labels: string[];
  script: string;
  status: JobStatus;
  result?: JobResult;
  exit_code?: number;
  output?: string;
  runner_name?: string;
  runner_id?: number;
  /** GitHub's annotation when the job failed without a result from its runner (runner lost or stopped). */
  failure?: string;
  /** Times a runner took the job: 0 or 1, as a job is never re-queued. */
  attempts: number;
  queued_at: string;
  started_at: string | null;
  completed_at: string | null;
}

/** A moment the benchmarks measure from (host time, ms precision; GitHub's own times are whole seconds). */
export interface SimEvent {
  at_ms: number;
  /**
   * session-opened: the runner can be handed jobs ("Listening for Jobs");
   * job-started: a job was handed to it; job-completed: its result is in;
   * runner-retired: GitHub removed it idle (idleJitRunnerRetireMs or /_sim/runners/{id}/retire).
   */
  kind: "session-opened" | "job-started" | "job-completed" | "runner-retired";
  runner: string;
  job?: number;
}

export interface SimState {
  runners: RunnerState[];
  jobs: JobState[];
  /** The latest session openings and job completions, oldest first (at most 5000). */
  events: SimEvent[];
  /** GitHub API calls only (not /_sim/ or /_broker/), keyed "METHOD /templated/path". */
  /** API calls: all of them, by endpoint template, and by endpoint per account (org, repo owner, enterprise; lower case). */
  requests: { total: number; byEndpoint: Record<string, number>; byAccount: Record<string, Record<string, number>> };
  /** OpenAPI violations seen so far (empty unless started with `validate`). */
  violations: string[];
  clockOffsetMs: number;
  settings: SimSettings;
}

export interface FaultSpec {
  /** HTTP method to match (default any). */
  method?: string;
  /** A path template ("/orgs/{org}/actions/runners/generate-jitconfig") or a concrete path; exact match. */
  path?: string;
  /** Regular expression (source) tested against the concrete path. */
  pathRegex?: string;
  /** How many matching calls it applies to (default 1). */
  count?: number;
  /** How many matching calls pass untouched before it applies (default 0). */
  skip?: number;
  /** Answer with this status instead of handling the call. */
  status?: number;
  /** Body for `status` (default GitHub's error body for that status). */
  body?: unknown;
  /** Seconds, sent as `retry-after`. */
  retryAfter?: number;
  /** Holds the answer this long after the call was handled (or failed); the effect stands even if the client gives up. */
  latencyMs?: number;
  /** Handle the call, then close the connection without an answer (a lost response). */
  drop?: true;
  /** Answer as GitHub does when that rate limit is hit (403). */
  rateLimited?: "primary" | "secondary";
}

export interface EnqueueJob {
  name: string;
  /** Labels a runner must all carry, case-insensitive (default none: any runner). */
  labels?: string[] | undefined;
  /** Run by the runner with `/bin/sh -c` in its work folder. */
  script: string;
}
