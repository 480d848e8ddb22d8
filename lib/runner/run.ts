// The runner's run in the guest: run.sh over vm.transport with the JIT config
// on stdin, its status lines followed, its one job waited for, every wait with
// a deadline (runner.listen_timeout, job_timeout, exit_timeout).
import { createInterface } from "node:readline";
import type { Config } from "../config/index.ts";
import { type ExitKind } from "../core/errors.ts";
import type { Level, Logger } from "../core/log.ts";
import { redact } from "../core/redact.ts";
import { after, type Clock } from "../core/wait.ts";
import { agentUnreachable, noRouteToHost, localNetworkError, sshSettings, startInGuest, transportCommand } from "../vm/guest.ts";
import type { Tart } from "../vm/tart.ts";

// The actions runner's status lines (contracts/github.md §4): run.sh's exit
// status says nothing about the job; these lines do.
export type RunnerEvent =
  | { kind: "connected" }
  | { kind: "listening" }
  | { kind: "job-started"; job: string }
  | { kind: "job-completed"; job: string; result: string }
  | { kind: "runner-gone" }
  | { kind: "session-conflict" };

const TS = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z: `;
const PATTERNS: [RegExp, (m: RegExpMatchArray) => RunnerEvent][] = [
  [/^√ Connected to GitHub$/, () => ({ kind: "connected" })],
  [new RegExp(`^${TS}Listening for Jobs$`), () => ({ kind: "listening" })],
  [new RegExp(`^${TS}Running job: (.+)$`), (m) => ({ kind: "job-started", job: m[1]! })],
  [new RegExp(`^${TS}Job (.+) completed with result: (\\w+)$`), (m) => ({ kind: "job-completed", job: m[1]!, result: m[2]! })],
  [/The runner no longer exists on the server/, () => ({ kind: "runner-gone" })],
  [/A session for this runner already exists/, () => ({ kind: "session-conflict" })],
];

export function parseRunnerLine(line: string): RunnerEvent | undefined {
  const text = line.trimEnd();
  for (const [re, make] of PATTERNS) {
    const m = text.match(re);
    if (m) return make(m);
  }
  return undefined;
}

// The guest's output in the slot log: status lines at info (`runner.<kind>`),
// the rest at debug (`guest.output`), each redacted, cut, and rate-capped per
// level, so a chatty or hostile guest cannot fill the disk or crowd them out.
/** `linesPerMinute` is per level; the others are counted, then reported. */
export const GUEST_OUTPUT_LIMITS = { lineChars: 500, linesPerMinute: 120 };

const MINUTE_MS = 60_000;
type GuestLevel = Extract<Level, "info" | "debug">;

export class GuestOutput {
  private windowStart = Number.NEGATIVE_INFINITY;
  private readonly written: Record<GuestLevel, number> = { info: 0, debug: 0 };
  private readonly dropped: Record<GuestLevel, number> = { info: 0, debug: 0 };

  constructor(
    private readonly log: Logger,
    private readonly limits: typeof GUEST_OUTPUT_LIMITS = GUEST_OUTPUT_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  line(text: string, stream: "stdout" | "stderr", event: RunnerEvent | undefined): void {
    const level: GuestLevel = event ? "info" : "debug";
    if (this.now() - this.windowStart >= MINUTE_MS) {
      this.reportDropped();
      this.windowStart = this.now();
      this.written.info = this.written.debug = 0;
    }
    if (this.written[level] >= this.limits.linesPerMinute) {
      this.dropped[level]++;
      return;
    }
    this.written[level]++;
    // Redacted before it is cut, so a cut never leaves a secret's head too short to be recognised.
    const clean = redact(text);
    const cut = clean.length > this.limits.lineChars;
    this.log[level](event ? `runner.${event.kind}` : "guest.output", cut ? `${clean.slice(0, this.limits.lineChars)}…[truncated]` : clean, {
      stream,
      ...(cut ? { truncated: true, chars: clean.length } : {}),
    });
  }

  close(): void {
    this.reportDropped();
  }

  private reportDropped(): void {
    for (const level of ["info", "debug"] as const) {
      const n = this.dropped[level];
      if (n === 0) continue;
      this.dropped[level] = 0;
      this.log[level]("guest.output_dropped", `${n} guest line${n === 1 ? "" : "s"} not logged: more than ${this.limits.linesPerMinute} a minute`, { dropped: n });
    }
  }
}

/** How a run ended, and the exit kind it maps to. */
export const OUTCOME_EXIT = {
  succeeded: "ok",
  "job-failed": "job-failed",
  "no-job": "no-job",
  lost: "lost",
  timeout: "timeout",
  "host-key": "host-key",
  stopped: "stopped",
  "local-network": "local-network",
} as const satisfies Record<string, ExitKind>;

export interface RunOutcome {
  kind: keyof typeof OUTCOME_EXIT;
  job?: string | undefined;
  result?: string | undefined;
  /** GitHub removed the runner: it completed its job, or was retired idle. */
  runnerGone: boolean;
  /** GitHub retired the idle runner: a normal end, not a fault. */
  retired?: boolean;
  /** The session (not the runner) ended mid-job: the runner does not notice (no hangup without a terminal), so its job may go on. */
  sessionDropped?: boolean;
  detail?: string | undefined;
}

export interface RunHandle {
  readonly job: string | undefined;
  /** Kills the session; what the guest does is the VM's fate. */
  stop(): void;
  readonly done: Promise<RunOutcome>;
}

interface RunOptions {
  config: Config;
  vm: string;
  ip: string;
  tart: Tart;
  jitConfig: string;
  log: Logger;
  clock: Clock;
  /** A running job is lost when the VM is gone, without waiting for the session to notice. */
  vmGone?: Promise<unknown>;
  /** Done at the job's completion line (the caller disposes of the VM), not at the runner's exit. */
  endAtCompletion?: boolean;
  on?: { listening?(): void; jobStarted?(job: string): void; jobCompleted?(result: string): void };
}

const AGENT_RETRY_MS = 50;
/** tart exec's own error when the control socket closed under the command. */
const EXEC_SESSION_ENDED = /^Error: .*(unavailable|Transport became inactive|GRPC)/i;

/** The JIT config from stdin, never argv. A retired runner's config files are removed first: a runner replacing it in the VM sees only its own. */
const GUEST_COMMAND =
  'IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd "$HOME/actions-runner" && rm -f .runner .credentials .credentials_rsaparams && exec ./run.sh';

export function startRun(o: RunOptions): RunHandle {
  const { transport } = o.config.vm;
  const { runner } = o.config;
  const log = o.log.child({ phase: "run" });
  const guestOutput = new GuestOutput(log, GUEST_OUTPUT_LIMITS, () => o.clock.now());
  const started = o.clock.now();
  const target = { vm: o.vm, ip: o.ip };
  const spawn = () => startInGuest(o.config, o.tart, target, GUEST_COMMAND, { input: `${o.jitConfig}\n` });
  let p = spawn();
  let attempts = 1;

  let job: string | undefined;
  let result: string | undefined;
  let runnerGone = false;
  let retired = false;
  let hostKeyRefused = false;
  // Per attempt: the runner spoke, or tart/ssh said why the session could not be had.
  let runnerSpoke = false;
  let agentDown = false;
  let noRoute = "";
  let execSessionEnded = false;
  let ended: RunOutcome | undefined;
  let sshExited = false;
  let cancelDeadline = () => {};
  let settle!: (o: RunOutcome) => void;
  const done = new Promise<RunOutcome>((resolve) => (settle = resolve));

  const end = (outcome: RunOutcome) => {
    if (ended) return;
    ended = outcome;
    cancelDeadline();
    guestOutput.close();
    if (!sshExited) p.kill("SIGTERM");
    const level = outcome.kind === "succeeded" || outcome.kind === "job-failed" || outcome.retired ? "info" : "warn";
    log[level]("run.done", `${outcome.kind}${outcome.job ? ` job="${outcome.job}" result=${outcome.result ?? "none"}` : ""}${outcome.detail ? `: ${outcome.detail}` : ""}`, {
      duration_ms: o.clock.now() - started, outcome: outcome.kind,
    });
    settle(outcome);
  };
  const deadline = (ms: number, why: string) => {
    cancelDeadline();
    cancelDeadline = after(o.clock, ms, () => end({ kind: "timeout", job, runnerGone, detail: why }));
  };
  const completed = () => ({ kind: result === "Succeeded" ? "succeeded" : "job-failed", job, result, runnerGone: true }) as const;

  deadline(runner.listenTimeoutMs, `the runner did not print "Listening for Jobs" within runner.listen_timeout (${runner.listenTimeoutMs} ms)`);

  const onLine = (line: string, stream: "stdout" | "stderr") => {
    if (line.trim() === "") return;
    if (/^Host key verification failed/.test(line) || /REMOTE HOST IDENTIFICATION HAS CHANGED/.test(line)) hostKeyRefused = true;
    const ev = parseRunnerLine(line);
    guestOutput.line(line, stream, ev);
    switch (ev?.kind) {
      case "listening":
        cancelDeadline();
        log.info("run.ready", "runner listening for jobs", { duration_ms: o.clock.now() - started });
        o.on?.listening?.();
        break;
      case "job-started":
        job = ev.job;
        deadline(runner.jobTimeoutMs, `job "${job}" ran longer than runner.job_timeout (${runner.jobTimeoutMs} ms)`);
        o.on?.jobStarted?.(job);
        break;
      case "job-completed":
        result = ev.result;
        runnerGone = true;
        o.on?.jobCompleted?.(ev.result);
        if (o.endAtCompletion) end(completed());
        else deadline(runner.exitTimeoutMs, `the runner did not exit within runner.exit_timeout (${runner.exitTimeoutMs} ms) after its job`);
        break;
      case "runner-gone":
        retired = true;
        runnerGone = true;
        break;
      case "session-conflict":
        // The runner would retry for 4 minutes first.
        end({ kind: "no-job", job, runnerGone, detail: "another listener already holds this runner's session (its JIT config was used twice); no job can come to this one" });
        break;
    }
  };
  const transportLine = (line: string, stream: "stdout" | "stderr") => {
    if (stream === "stdout") runnerSpoke = true;
    else if (!runnerSpoke && agentUnreachable(line)) return void (agentDown = true);
    else if (!runnerSpoke && noRouteToHost(line)) noRoute = line.trim();
    else if (transport === "exec" && EXEC_SESSION_ENDED.test(line)) execSessionEnded = true;
    onLine(line, stream);
  };
  const follow = () => {
    createInterface({ input: p.stdout }).on("line", (l) => transportLine(l, "stdout"));
    createInterface({ input: p.stderr }).on("line", (l) => transportLine(l, "stderr"));
  };
  follow();

  o.vmGone?.then(() => {
    if (result !== undefined) return end(completed());
    end({ kind: job === undefined ? "no-job" : "lost", job, runnerGone, detail: "the VM stopped" });
  });

  void (async () => {
    let out = await p.exited;
    // A start that never reached the runner is made again with the still unused JIT config: exec while
    // the agent does not answer yet, ssh once on 255 (sshd answering early while the guest boots).
    for (;;) {
      if (ended || runnerSpoke || hostKeyRefused || noRoute) break;
      const again = transport === "exec" ? out.code === 1 && agentDown : out.code === 255 && attempts === 1;
      if (!again) break;
      log[transport === "exec" ? "debug" : "warn"]("run.retry", transport === "exec"
        ? "the tart guest agent does not answer yet; starting the runner again"
        : "ssh failed (exit 255) before the runner printed anything; starting it once more with the same JIT config", { attempt: attempts + 1 });
      if (transport === "exec") await o.clock.sleep(AGENT_RETRY_MS);
      if (ended) break;
      agentDown = false;
      attempts++;
      p = spawn();
      follow();
      out = await p.exited;
    }
    sshExited = true;
    const { code } = out;
    if (result !== undefined) return end(completed());
    if (noRoute) return end({ kind: "local-network", runnerGone, detail: localNetworkError(o.ip, noRoute).message });
    if (hostKeyRefused) return end({ kind: "host-key", runnerGone, detail: `host key of ${o.ip} does not match ${sshSettings(o.config).knownHostsPath}` });
    if (job !== undefined) {
      // ssh: 255 is ssh's own failure. tart exec: 255 is a runner killed by a signal (the agent reports -1).
      const sessionDropped = code === null || (transport === "ssh" ? code === 255 : execSessionEnded);
      return end({ kind: "lost", job, runnerGone, sessionDropped, detail: sessionDropped ? `${transportCommand(transport)} ended (${code ?? out.signal}) while the job ran` : `the runner exited (${code}) while the job ran` });
    }
    if (retired) return end({ kind: "no-job", runnerGone, retired, detail: "GitHub removed the idle runner" });
    if (transport === "ssh" && code === 255) return end({ kind: "no-job", runnerGone, detail: `ssh failed (exit 255) before a job started${attempts > 1 ? ", twice" : ""}` });
    if (agentDown) return end({ kind: "no-job", runnerGone, detail: "the tart guest agent did not answer" });
    end({ kind: "no-job", runnerGone, detail: `runner exited (${code ?? out.signal}) without a job` });
  })();

  return {
    get job() {
      return job;
    },
    stop: () => end({ kind: "stopped", job, runnerGone, detail: "stopped" }),
    done,
  };
}
