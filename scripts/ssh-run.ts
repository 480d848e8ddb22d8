#!/usr/bin/env bun
// ssh-run: start the actions runner in the guest with the JIT config on
// stdin, follow its status lines, and wait for its one job.
//   token --slot 1 | ssh-run --slot 1 --ip 192.168.64.5
// Every wait has a deadline: the runner must listen within
// runner.listen_timeout, a job may run runner.job_timeout, and after its job
// the runner must exit within runner.exit_timeout.
import { createInterface } from "node:readline";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { exitCode, UsageError, type ExitKind } from "../lib/errors.ts";
import { registerJitConfig } from "../lib/github/jit-config.ts";
import type { Logger } from "../lib/log.ts";
import { sh } from "../lib/proc.ts";
import { GuestOutput } from "../lib/runner/guest-output.ts";
import { parseRunnerLine } from "../lib/runner-log.ts";
import { sshArgs } from "../lib/ssh.ts";

/** How a run ended, and the exit kind ssh-run reports it with. */
export const OUTCOME_EXIT = {
  succeeded: "ok",
  "job-failed": "job-failed",
  "no-job": "no-job",
  lost: "lost",
  timeout: "timeout",
  "host-key": "host-key",
  stopped: "stopped",
} as const satisfies Record<string, ExitKind>;
export type OutcomeKind = keyof typeof OUTCOME_EXIT;

export const spec = {
  name: "ssh-run",
  summary: "run the actions runner in the guest over SSH (JIT config read from stdin) and wait for its job",
  options: {
    ip: { type: "string", value: "IP", description: "the guest's address (required)" },
  },
  exits: {
    "job-failed": "the job ran and completed with a result other than Succeeded",
    "no-job": "the runner exited without running a job (e.g. GitHub removed the idle runner), or another listener holds its session",
    lost: "the SSH session failed or was lost while the job ran (VM died, network), or the runner itself died",
    timeout: "the runner did not listen within runner.listen_timeout, the job outran runner.job_timeout, or the runner did not exit within runner.exit_timeout after its job",
    "host-key": "the guest's host key does not match vm.ssh.known_hosts_path; refused",
    stopped: "stopped by a signal before a job started",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

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
   * The SSH session ended while the job ran without the runner ending: ssh
   * failed (255) or was killed. The runner does not notice (no hangup without
   * a terminal), so its job may go on. Any other exit is run.sh's own: the
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
  ip: string;
  jitConfig: string;
  log: Logger;
  /** Resolves when the VM is gone: a running job is lost then, without waiting for ssh to notice. */
  vmGone?: Promise<unknown>;
  /** Resolve as soon as the job is reported complete (the caller disposes of the VM). */
  endAtCompletion?: boolean;
  on?: { listening?(): void; jobStarted?(job: string): void; jobCompleted?(result: string): void };
}

/**
 * Reads the JIT config from the guest's stdin, so it never appears in any
 * argv. A runner retired before its job leaves its config files (the runner
 * keeps them when GitHub removed it before its session opened); they are
 * removed first, so a runner started in the same VM sees only its own.
 */
const GUEST_COMMAND =
  'IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd "$HOME/actions-runner" && rm -f .runner .credentials .credentials_rsaparams && exec ./run.sh';

export function startRun(o: RunOptions): RunHandle {
  const { ssh, } = o.config.vm;
  const { runner } = o.config;
  const log = o.log.child({ phase: "run" });
  const guestOutput = new GuestOutput(log);
  const started = Date.now();
  const args = sshArgs({ host: o.ip, port: ssh.port, user: ssh.user, privateKeyPath: ssh.privateKeyPath, knownHostsPath: ssh.knownHostsPath }, GUEST_COMMAND);
  // exec: ssh replaces the shell, so ending the run is one kill, not zx's walk of the process tree (ps).
  const p = sh({ input: `${o.jitConfig}\n` })`exec ssh ${args}`;

  let listening = false;
  let job: string | undefined;
  let result: string | undefined;
  let runnerGone = false;
  let retired = false;
  let hostKeyRefused = false;
  let ended: RunOutcome | undefined;
  let sshExited = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let settle!: (o: RunOutcome) => void;
  const done = new Promise<RunOutcome>((resolve) => (settle = resolve));

  const end = (outcome: RunOutcome) => {
    if (ended) return;
    ended = outcome;
    clearTimeout(timer);
    guestOutput.close();
    if (!sshExited) p.child?.kill("SIGTERM");
    const level = outcome.kind === "succeeded" || outcome.kind === "job-failed" || outcome.retired ? "info" : "warn";
    log[level]("run.done", `${outcome.kind}${outcome.job ? ` job="${outcome.job}" result=${outcome.result ?? "none"}` : ""}${outcome.detail ? `: ${outcome.detail}` : ""}`, {
      duration_ms: Date.now() - started, outcome: outcome.kind,
    });
    settle(outcome);
  };
  const deadline = (ms: number, why: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => end({ kind: "timeout", job, runnerGone, detail: why }), ms);
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
        clearTimeout(timer);
        log.info("run.ready", "runner listening for jobs", { duration_ms: Date.now() - started });
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
  createInterface({ input: p.stdout }).on("line", (l) => onLine(l, "stdout"));
  createInterface({ input: p.stderr }).on("line", (l) => onLine(l, "stderr"));

  o.vmGone?.then(() => {
    if (result !== undefined) return end(completed());
    end({ kind: job === undefined ? "no-job" : "lost", job, runnerGone, detail: "the VM stopped" });
  });

  void (async () => {
    const out = await p;
    sshExited = true;
    const code = out.exitCode;
    if (result !== undefined) return end(completed());
    if (hostKeyRefused) return end({ kind: "host-key", runnerGone, detail: `host key of ${o.ip} does not match ${ssh.knownHostsPath}` });
    if (job !== undefined) {
      const sessionDropped = code === 255 || code === null;
      return end({ kind: "lost", job, runnerGone, sessionDropped, detail: sessionDropped ? `ssh ended (${code ?? out.signal}) while the job ran` : `the runner exited (${code}) while the job ran` });
    }
    if (retired) return end({ kind: "no-job", runnerGone, retired, detail: "GitHub removed the idle runner" });
    if (code === 255) return end({ kind: "no-job", runnerGone, detail: "ssh failed (exit 255) before a job started" });
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

async function readStdinJit(): Promise<string> {
  const text = (await new Response(Bun.stdin.stream()).text()).trim();
  if (!text) throw new UsageError("ssh-run: expected the JIT config on stdin (the JSON from `token`, or the bare encoded config)");
  let jit: string | undefined = text;
  if (text.startsWith("{")) {
    try {
      jit = (JSON.parse(text) as { encoded_jit_config?: unknown }).encoded_jit_config as string | undefined;
    } catch {
      throw new UsageError("ssh-run: stdin starts like JSON but is not JSON; pipe the output of `token`");
    }
  }
  if (typeof jit !== "string" || !jit) throw new UsageError("ssh-run: the JSON on stdin has no encoded_jit_config");
  return jit;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number> {
  if (!values.ip) throw new UsageError("ssh-run: --ip IP is required");
  const { config, log } = openSlot(common, spec.name);
  const jit = await readStdinJit();
  registerJitConfig(jit);
  const run = startRun({ config, ip: values.ip, jitConfig: jit, log });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => run.stop());
  return exitCode(OUTCOME_EXIT[(await run.done).kind]);
}

if (import.meta.main) await runCli(spec, main);
