// The job queue and the broker sessions of connected runners: dispatch,
// long-polls, results, and re-queueing jobs whose runner vanished.
import { randomUUID } from "node:crypto";
import { ApiError } from "./http.ts";
import type { Clock } from "./clock.ts";
import type { Registry, Runner } from "./runners.ts";
import type { EnqueueJob, JobResult, JobState } from "./types.ts";

export interface Session {
  id: string;
  runner: Runner;
  /** Host time of the last contact; with no open poll the session lives `leaseMs` past it. */
  lastSeen: number;
  openPolls: number;
  job?: JobState;
}

type PollOutcome = JobState | "timeout" | "gone";

interface Waiter {
  session: Session;
  settle: (outcome: PollOutcome) => void;
}

export class Broker {
  readonly jobs: JobState[] = [];
  private readonly sessions = new Map<string, Session>();
  private waiters: Waiter[] = [];
  private nextJobId = 1;
  private readonly reaper: ReturnType<typeof setInterval>;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    readonly leaseMs: number,
  ) {
    this.reaper = setInterval(() => this.expireSessions(), Math.max(50, Math.floor(leaseMs / 4)));
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
    this.dispatchToWaiters();
    return job;
  }

  /** Starts a runner's session: it goes online. 409 if it already has one. */
  open(runner: Runner, info: { os?: string; version?: string }): Session {
    if (this.sessionOf(runner)) throw new ApiError(409, "A session for this runner already exists.");
    const session: Session = { id: randomUUID(), runner, lastSeen: performance.now(), openPolls: 0 };
    this.sessions.set(session.id, session);
    runner.online = true;
    if (info.os) runner.os = info.os;
    if (info.version) runner.version = info.version;
    return session;
  }

  /** The session `id` of `runner`; 404 if the runner is gone, 410 if only the session expired. */
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
    const job = this.findJob(session.runner);
    if (job) return Promise.resolve(this.assign(job, session));
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
    });
  }

  /** Records a job's result; an ephemeral runner is deleted afterwards. */
  complete(session: Session, jobId: number, report: { result: JobResult; exit_code: number; output: string }): void {
    const job = session.job;
    if (!job || job.id !== jobId) throw new ApiError(409, `Job ${jobId} is not assigned to runner ${session.runner.name}.`);
    job.status = "completed";
    job.result = report.result;
    job.exit_code = report.exit_code;
    job.output = report.output;
    job.completed_at = this.clock.iso();
    session.job = undefined;
    session.runner.busy = false;
    if (session.runner.ephemeral) this.removeRunner(session.runner);
  }

  /** Ends a session (runner stopped): offline, and its unfinished job goes back to the queue. */
  close(session: Session): void {
    if (!this.sessions.delete(session.id)) return;
    session.runner.online = false;
    session.runner.busy = false;
    for (const w of this.waiters.filter((w) => w.session === session)) w.settle("gone");
    const job = session.job;
    session.job = undefined;
    if (job && job.status === "in_progress") {
      job.status = "queued";
      job.runner_id = undefined;
      job.runner_name = undefined;
      job.started_at = null;
      this.dispatchToWaiters();
    }
  }

  /** Deletes a runner and whatever session it had. */
  removeRunner(runner: Runner): void {
    const session = this.sessionOf(runner);
    if (session) this.close(session);
    this.registry.delete(runner);
  }

  stop(): void {
    clearInterval(this.reaper);
    for (const w of [...this.waiters]) w.settle("timeout");
  }

  private expireSessions(): void {
    const now = performance.now();
    for (const s of [...this.sessions.values()]) {
      if (s.openPolls === 0 && now - s.lastSeen > this.leaseMs) this.close(s);
    }
  }

  private findJob(runner: Runner): JobState | undefined {
    const labels = new Set(runner.labels.map((l) => l.name.toLowerCase()));
    return this.jobs.find((j) => j.status === "queued" && j.labels.every((l) => labels.has(l.toLowerCase())));
  }

  private assign(job: JobState, session: Session): JobState {
    job.status = "in_progress";
    job.runner_id = session.runner.id;
    job.runner_name = session.runner.name;
    job.started_at = this.clock.iso();
    job.attempts++;
    session.job = job;
    session.runner.busy = true;
    return job;
  }

  private dispatchToWaiters(): void {
    for (const waiter of [...this.waiters]) {
      const job = this.findJob(waiter.session.runner);
      if (job) waiter.settle(this.assign(job, waiter.session));
    }
  }
}
