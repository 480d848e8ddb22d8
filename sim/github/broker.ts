// The job queue and the broker sessions of connected runners: dispatch by
// labels, long-polls, results, and what happens to a job whose runner goes
// away (it fails; GitHub never re-queues it).
import { randomUUID } from "node:crypto";
import { ApiError } from "./http.ts";
import type { Clock } from "./clock.ts";
import type { Registry, Runner } from "./runners.ts";
import type { EnqueueJob, JobResult, JobState, SimEvent, SimSettings } from "./types.ts";

const MAX_EVENTS = 5000;

export interface Session {
  id: string;
  runner: Runner;
  /** Host time of the last contact; with no open poll the session lives `leaseMs` past it. */
  lastSeen: number;
  /** Host time of the session's first long-poll: from then on it can be handed a job. */
  listeningSince?: number;
  openPolls: number;
  job?: JobState | undefined;
}

type PollOutcome = JobState | "timeout" | "gone";

interface Waiter {
  session: Session;
  settle: (outcome: PollOutcome) => void;
}

/** GitHub's annotation on a job whose runner vanished (actions/runner#2624). */
export const lostCommunication = (runner: string) =>
  `The self-hosted runner: ${runner} lost communication with the server. Verify the machine is running and has a healthy network connection. Anything in your workflow that terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this error.`;

/** The runner's own annotation when it is stopped during a job. */
export const SHUTDOWN_SIGNAL =
  "The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.";

export class Broker {
  readonly jobs: JobState[] = [];
  /** Session openings and job completions with ms times, for benchmarks (turnaround). */
  readonly events: SimEvent[] = [];
  private readonly sessions = new Map<string, Session>();
  private waiters: Waiter[] = [];
  /** Host time each job was queued, for the assignment delay. */
  private readonly queuedAt = new Map<JobState, number>();
  /** Runners whose session went silent while they held a job, with when it was noticed. */
  private readonly lost = new Map<Runner, { job: JobState; since: number }>();
  private nextJobId = 1;
  private dispatchTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly reaper: ReturnType<typeof setInterval>;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    readonly leaseMs: number,
    readonly settings: SimSettings,
  ) {
    this.reaper = setInterval(() => this.reap(), Math.max(50, Math.floor(leaseMs / 4)));
    this.reaper.unref();
  }

  enqueue(spec: EnqueueJob): JobState {
    const job: JobState = {
      id: this.nextJobId++,
      name: spec.name,
      labels: spec.labels ?? [],
      script: spec.script,
      status: "queued",
      attempts: 0,
      queued_at: this.clock.iso(),
      started_at: null,
      completed_at: null,
    };
    this.jobs.push(job);
    this.queuedAt.set(job, performance.now());
    this.dispatch();
    return job;
  }

  /** Starts a runner's session: it goes online. 409 if it already has one. */
  open(runner: Runner, info: { os?: string | undefined; version?: string | undefined }): Session {
    if (this.sessionOf(runner)) throw new ApiError(409, "A session for this runner already exists.");
    const session: Session = { id: randomUUID(), runner, lastSeen: performance.now(), openPolls: 0 };
    this.sessions.set(session.id, session);
    runner.online = true;
    this.record({ at_ms: Date.now(), kind: "session-opened", runner: runner.name });
    if (info.os) runner.os = info.os;
    if (info.version) runner.version = info.version;
    return session;
  }

  /** The session `id` of `runner`; 410 if it ended. */
  session(id: string, runner: Runner): Session {
    const session = this.sessions.get(id);
    if (!session || session.runner !== runner) throw new ApiError(410, "The session has expired.");
    session.lastSeen = performance.now();
    return session;
  }

  sessionOf(runner: Runner): Session | undefined {
    for (const s of this.sessions.values()) if (s.runner === runner) return s;
    return undefined;
  }

  /** Long-poll for a job: resolves with one, "timeout" after `waitMs`, or "gone" if the session ends. */
  poll(session: Session, waitMs: number, aborted: AbortSignal): Promise<PollOutcome> {
    if (session.job) return Promise.resolve(session.job);
    session.listeningSince ??= performance.now();
    return new Promise((resolve) => {
      session.openPolls++;
      const finish = (outcome: PollOutcome) => {
        clearTimeout(timer);
        aborted.removeEventListener("abort", onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        session.openPolls--;
        session.lastSeen = performance.now();
        resolve(outcome);
      };
      const waiter: Waiter = { session, settle: finish };
      const timer = setTimeout(() => finish("timeout"), waitMs);
      const onAbort = () => finish("timeout");
      aborted.addEventListener("abort", onAbort);
      this.waiters.push(waiter);
      this.dispatch();
    });
  }

  /** Records a job's result; an ephemeral runner is deleted afterwards. */
  complete(session: Session, jobId: number, report: { result: JobResult; exit_code: number; output: string }): void {
    const job = session.job;
    if (!job || job.id !== jobId) throw new ApiError(409, `Job ${jobId} is not assigned to runner ${session.runner.name}.`);
    job.exit_code = report.exit_code;
    job.output = report.output;
    this.conclude(job, report.result);
    session.job = undefined;
    session.runner.busy = false;
    if (session.runner.ephemeral) this.removeRunner(session.runner);
  }

  /**
   * Ends a session: the runner goes offline. A job it held fails at once with
   * `failure` (the runner said goodbye, so GitHub knows the job is over).
   */
  close(session: Session, failure = SHUTDOWN_SIGNAL): void {
    if (!this.sessions.delete(session.id)) return;
    session.runner.online = false;
    session.runner.busy = false;
    for (const w of this.waiters.filter((w) => w.session === session)) w.settle("gone");
    if (session.job) this.conclude(session.job, "Failed", failure);
    session.job = undefined;
  }

  /** Deletes a runner and whatever session it had; a job it held fails. */
  removeRunner(runner: Runner): void {
    const session = this.sessionOf(runner);
    if (session) this.close(session, lostCommunication(runner.name));
    const lost = this.lost.get(runner);
    if (lost) {
      this.lost.delete(runner);
      this.conclude(lost.job, "Failed", lostCommunication(runner.name));
    }
    this.registry.delete(runner);
  }

  /** GitHub removing an idle runner on its own (idle JIT runners go after 2–6 min, actions/runner#4726); 422 while it holds a job. */
  retire(runner: Runner): void {
    if (runner.busy) throw new ApiError(422, `Bad request - Runner "${runner.name}" is still running a job`);
    this.removeRunner(runner);
    this.record({ at_ms: Date.now(), kind: "runner-retired", runner: runner.name });
  }

  stop(): void {
    clearInterval(this.reaper);
    clearTimeout(this.dispatchTimer);
    for (const w of [...this.waiters]) w.settle("timeout");
  }

  /** Re-reads the settings: pending assignments and losses follow the new values. */
  settingsChanged(): void {
    this.reap();
    this.dispatch();
  }

  private conclude(job: JobState, result: JobResult, failure?: string): void {
    if (job.status === "completed") return;
    job.status = "completed";
    job.result = result;
    if (failure) job.failure = failure;
    job.completed_at = this.clock.iso();
    this.queuedAt.delete(job);
    this.record({ at_ms: Date.now(), kind: "job-completed", runner: job.runner_name ?? "", job: job.id });
  }

  private record(event: SimEvent): void {
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  private reap(): void {
    const now = performance.now();
    for (const s of [...this.sessions.values()]) {
      if (s.openPolls === 0 && now - s.lastSeen > this.leaseMs) this.loseSession(s);
    }
    for (const [runner, { job, since }] of [...this.lost]) {
      if (now - since < this.settings.lostRunnerBusyMs) continue;
      this.lost.delete(runner);
      this.conclude(job, "Failed", lostCommunication(runner.name));
      runner.busy = false;
    }
    for (const runner of [...this.registry.runners.values()]) {
      if (runner.jit && !runner.busy && now - runner.registeredAt >= this.settings.idleJitRunnerRetireMs && !this.jobs.some((j) => j.runner_id === runner.id)) {
        this.removeRunner(runner);
        this.record({ at_ms: Date.now(), kind: "runner-retired", runner: runner.name });
      }
    }
    this.dispatch();
  }

  /**
   * A session silent past its lease (VM died, runner killed): the runner goes
   * offline, but a job it held stays in progress and the runner busy for
   * `lostRunnerBusyMs`; then the job fails.
   */
  private loseSession(session: Session): void {
    this.sessions.delete(session.id);
    session.runner.online = false;
    for (const w of this.waiters.filter((w) => w.session === session)) w.settle("gone");
    if (session.job) this.lost.set(session.runner, { job: session.job, since: performance.now() });
    else session.runner.busy = false;
    session.job = undefined;
  }

  private matches(job: JobState, runner: Runner): boolean {
    const labels = new Set(runner.labels.map((l) => l.name.toLowerCase()));
    return job.status === "queued" && job.labels.every((l) => labels.has(l.toLowerCase()));
  }

  private assign(job: JobState, session: Session): JobState {
    job.status = "in_progress";
    job.runner_id = session.runner.id;
    job.runner_name = session.runner.name;
    job.started_at = this.clock.iso();
    this.record({ at_ms: Date.now(), kind: "job-started", runner: session.runner.name, job: job.id });
    job.attempts++;
    session.job = job;
    session.runner.busy = true;
    return job;
  }

  /**
   * Hands queued jobs (oldest first) to idle listening runners whose labels
   * match, each `assignDelayMs` after both the job was queued and the runner
   * started listening; re-arms itself for the next pair not yet due.
   */
  private dispatch(): void {
    clearTimeout(this.dispatchTimer);
    this.dispatchTimer = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const waiter of [...this.waiters]) {
      const { session } = waiter;
      if (session.runner.busy || session.listeningSince === undefined) continue;
      const job = this.jobs.find((j) => this.matches(j, session.runner));
      if (!job) continue;
      const due = Math.max(this.queuedAt.get(job)!, session.listeningSince) + this.settings.assignDelayMs;
      if (due <= now) waiter.settle(this.assign(job, session));
      else next = Math.min(next, due);
    }
    if (next !== Infinity) this.dispatchTimer = setTimeout(() => this.dispatch(), next - now);
  }
}
