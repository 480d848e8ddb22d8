// The runner's run in the guest: run.sh started over vm.transport (tart exec,
// or ssh) with the JIT config on stdin, its status lines followed, its one job
// waited for. Every wait has a deadline: the runner must listen within
// runner.listen_timeout, a job may run runner.job_timeout, and after its job
// the runner must exit within runner.exit_timeout.
import { createInterface } from "node:readline";
import type { Config } from "../config/index.ts";
import { type ExitKind } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { after, type Clock } from "../core/wait.ts";
import { GUEST_OUTPUT_LIMITS, GuestOutput } from "./guest-output.ts";
import { parseRunnerLine } from "./status-lines.ts";
import { agentUnreachable, noRouteToHost, localNetworkError, sshSettings, startInGuest, transportCommand } from "../vm/guest.ts";
import type { Tart } from "../vm/tart.ts";

/** How a run ended, and the exit kind ssh-run reports it with. */
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
export type OutcomeKind = keyof typeof OUTCOME_EXIT;

export interface RunOutcome {
  kind: OutcomeKind;
  /** The job's display name and result, when one ran. */
  job?: string | undefined;
  result?: string | undefined;
  /** GitHub has already removed the runner: it completed its job, or GitHub retired it while idle. */
  runnerGone: boolean;
  /** GitHub retired the idle runner ("no longer exists on the server"): a normal end, not a fault. */
  retired?: boolean;
  /**
   * The session to the guest ended while the job ran without the runner
   * ending: ssh failed (255), tart exec said its control socket closed, or
   * either was killed. The runner does not notice (no hangup without a
   * terminal), so its job may go on. Any other exit is run.sh's own: the
   * runner itself ended mid-job.
   */
  sessionDropped?: boolean;
  detail?: string | undefined;
}

export interface RunHandle {
  /** The runner printed "Listening for Jobs" (a job can be assigned). */
  readonly listening: boolean;
  /** The job the runner took, once it printed "Running job". */
  readonly job: string | undefined;
  /** Ends the run now (ssh is killed; what the guest does is the VM's fate). */
  stop(): void;
  readonly done: Promise<RunOutcome>;
}

export interface RunOptions {
  config: Config;
  /** The VM's name: `tart exec` reaches it by name (vm.transport exec). */
  vm: string;
  /** The guest's address (vm.transport ssh). */
  ip: string;
  /** The tart the VM runs under (vm.transport exec). */
  tart: Tart;
  jitConfig: string;
  log: Logger;
  /** What the run's deadlines and durations read. */
  clock: Clock;
  /** Resolves when the VM is gone: a running job is lost then, without waiting for ssh to notice. */
  vmGone?: Promise<unknown>;
  /** Resolve as soon as the job is reported complete (the caller disposes of the VM). */
  endAtCompletion?: boolean;
  on?: { listening?(): void; jobStarted?(job: string): void; jobCompleted?(result: string): void };
}

/** How soon a start is tried again while `tart exec` says the guest agent does not answer yet. */
const AGENT_RETRY_MS = 50;
/** tart exec's own error when the control socket closed under the command (the VM's `tart run` ended). */
const EXEC_SESSION_ENDED = /^Error: .*(unavailable|Transport became inactive|GRPC)/i;

/**
 * Reads the JIT config from the guest's stdin, so it never appears in any
 * argv. A runner retired before its job leaves its config files (the runner
 * keeps them when GitHub removed it before its session opened); they are
 * removed first, so a runner started in the same VM sees only its own.
 */
const GUEST_COMMAND =
  'IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd "$HOME/actions-runner" && rm -f .runner .credentials .credentials_rsaparams && exec ./run.sh';

export function startRun(o: RunOptions): RunHandle {
  const { transport } = o.config.vm;
  const { runner } = o.config;
  const log = o.log.child({ phase: "run" });
  const guestOutput = new GuestOutput(log, GUEST_OUTPUT_LIMITS, () => o.clock.now());
  const started = o.clock.now();
  const target = { vm: o.vm, ip: o.ip };
  // The JIT config is unused until run.sh reads it, so a start that never reached the guest is made again with it.
  const spawn = () => startInGuest(o.config, o.tart, target, GUEST_COMMAND, { input: `${o.jitConfig}\n` });
  let p = spawn();
  let attempts = 1;

  let listening = false;
  let job: string | undefined;
  let result: string | undefined;
  let runnerGone = false;
  let retired = false;
  let hostKeyRefused = false;
  // Per attempt: the runner printed something (stdout), or tart/ssh said why the session could not be had.
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
        listening = true;
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
        // Another listener holds this runner's session (its JIT config ran twice), so
        // no job can come to this one; the runner would retry for 4 minutes first.
        end({ kind: "no-job", job, runnerGone, detail: "another listener already holds this runner's session (its JIT config was used twice); no job can come to this one" });
        break;
    }
  };
  // What the transport itself says (tart exec, ssh) before the runner's lines are logged.
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
    // A start that never reached the runner is made again with the same, still unused, JIT config:
    // exec while the guest agent does not answer yet (until runner.listen_timeout), ssh once on 255
    // (sshd answering early while the guest boots).
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
      // ssh: 255 is ssh's own failure. tart exec: 255 is a runner killed by a signal (the agent reports -1);
      // the session ended when tart says its control socket closed, or the client was killed.
      const sessionDropped = code === null || (transport === "ssh" ? code === 255 : execSessionEnded);
      return end({ kind: "lost", job, runnerGone, sessionDropped, detail: sessionDropped ? `${transportCommand(transport)} ended (${code ?? out.signal}) while the job ran` : `the runner exited (${code}) while the job ran` });
    }
    if (retired) return end({ kind: "no-job", runnerGone, retired, detail: "GitHub removed the idle runner" });
    if (transport === "ssh" && code === 255) return end({ kind: "no-job", runnerGone, detail: `ssh failed (exit 255) before a job started${attempts > 1 ? ", twice" : ""}` });
    if (agentDown) return end({ kind: "no-job", runnerGone, detail: "the tart guest agent did not answer" });
    end({ kind: "no-job", runnerGone, detail: `runner exited (${code ?? out.signal}) without a job` });
  })();

  return {
    get listening() {
      return listening;
    },
    get job() {
      return job;
    },
    stop: () => end({ kind: "stopped", job, runnerGone, detail: "stopped" }),
    done,
  };
}
