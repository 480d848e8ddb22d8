#!/usr/bin/env bun
// ssh-run: start the actions runner in the guest with the JIT config on
// stdin, stream its log, and wait for its one job.
//   token --slot 1 | ssh-run --slot 1 --ip 192.168.64.5
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { exitCode, UsageError, type ExitKind } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { registerSecret } from "../lib/redact.ts";
import { parseRunnerLine, type RunnerEvent } from "../lib/runner-log.ts";
import { sshArgs } from "../lib/ssh.ts";

/** How a run ended, and the exit kind ssh-run reports it with. */
export const OUTCOME_EXIT = {
  succeeded: "ok",
  "job-failed": "job-failed",
  "no-job": "no-job",
  "ssh-lost": "lost",
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
    "no-job": "the runner exited without running a job (e.g. GitHub removed the idle runner)",
    lost: "the SSH session failed or was lost (VM died, network)",
    timeout: "the job ran longer than runner.job_timeout and was cut off",
    "host-key": "the guest's host key does not match vm.ssh.known_hosts_path; refused",
    stopped: "stopped by a signal before a job started",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export interface RunOutcome {
  kind: OutcomeKind;
  /** The job's display name and result, when one ran. */
  job?: string;
  result?: string;
  /** GitHub has already removed the runner: it completed its job, or GitHub retired it while idle. */
  runnerGone: boolean;
  /** GitHub retired the idle runner ("no longer exists on the server"): a normal end, not a fault. */
  retired?: boolean;
  detail?: string;
}

/** Lets a caller ask the run to end: "drain" waits for a running job, "now" cuts it. */
export interface StopControl {
  onStop(cb: (how: "drain" | "now") => void): void;
}

/** How long a stop waits for a job that may already be assigned before stopping an idle runner. */
const DRAIN_GRACE_MS = 1000;

/** Reads the JIT config from the guest's stdin, so it never appears in any argv. */
const GUEST_COMMAND =
  'IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd "$HOME/actions-runner" && exec ./run.sh';

export async function sshRun(o: {
  config: Config;
  ip: string;
  jitConfig: string;
  log: Logger;
  stop?: StopControl;
  /** Each runner log event as it is read (listening, job started, job completed, ...). */
  onEvent?: (ev: RunnerEvent) => void;
}): Promise<RunOutcome> {
  const { ssh } = o.config.vm;
  const log = o.log.child({ phase: "run" });
  const started = Date.now();
  const child = spawn("ssh", sshArgs({ host: o.ip, port: ssh.port, user: ssh.user, privateKeyPath: ssh.privateKeyPath, knownHostsPath: ssh.knownHostsPath }, GUEST_COMMAND), {
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(`${o.jitConfig}\n`);

  let job: string | undefined;
  let result: string | undefined;
  let runnerGone = false;
  let retired = false;
  let cut: OutcomeKind | undefined;
  let hostKeyRefused = false;
  let jobTimer: ReturnType<typeof setTimeout> | undefined;
  let stopRequested: "drain" | "now" | undefined;

  const kill = (why: OutcomeKind) => {
    cut ??= why;
    child.kill("SIGTERM");
  };
  o.stop?.onStop((how) => {
    stopRequested = how;
    if (how === "now") return kill("stopped");
    if (job !== undefined) return log.warn("run.draining", `stop requested; letting job "${job}" finish (signal again to cut it short)`);
    // GitHub may have assigned a job whose "Running job" line is still in flight:
    // give it a moment rather than abandoning it.
    setTimeout(() => job === undefined && kill("stopped"), DRAIN_GRACE_MS);
  });

  const onLine = (line: string, stream: "stdout" | "stderr") => {
    if (line.trim() === "") return;
    if (/^Host key verification failed/.test(line) || /REMOTE HOST IDENTIFICATION HAS CHANGED/.test(line)) hostKeyRefused = true;
    const ev = parseRunnerLine(line);
    log.info(ev ? `runner.${ev.kind}` : "guest.output", line, { stream });
    if (!ev) return;
    o.onEvent?.(ev);
    if (ev.kind === "listening") log.info("run.ready", "runner listening for jobs", { duration_ms: Date.now() - started });
    if (ev.kind === "job-started") {
      job = ev.job;
      if (stopRequested === "drain") log.warn("run.draining", `stop requested; letting job "${job}" finish (signal again to cut it short)`);
      jobTimer = setTimeout(() => kill("timeout"), o.config.runner.jobTimeoutMs);
    }
    if (ev.kind === "runner-gone") {
      retired = true;
      runnerGone = true;
    }
    if (ev.kind === "job-completed") {
      result = ev.result;
      runnerGone = true;
      clearTimeout(jobTimer);
      if (stopRequested) kill("stopped");
    }
  };
  createInterface({ input: child.stdout }).on("line", (l) => onLine(l, "stdout"));
  createInterface({ input: child.stderr }).on("line", (l) => onLine(l, "stderr"));

  const code = await new Promise<number | null>((resolve) => {
    child.on("close", (c) => resolve(c));
    child.on("error", () => resolve(255));
  });
  clearTimeout(jobTimer);

  let outcome: RunOutcome;
  if (result !== undefined) outcome = { kind: result === "Succeeded" ? "succeeded" : "job-failed", job, result, runnerGone };
  else if (cut) outcome = { kind: cut, job, runnerGone, detail: cut === "timeout" ? `job exceeded runner.job_timeout (${o.config.runner.jobTimeoutMs} ms)` : undefined };
  else if (hostKeyRefused) outcome = { kind: "host-key", runnerGone, detail: `host key of ${o.ip} does not match ${ssh.knownHostsPath}` };
  else if (code === 255 || job !== undefined) outcome = { kind: "ssh-lost", job, runnerGone, detail: `ssh exit ${code}` };
  else if (retired) outcome = { kind: "no-job", runnerGone, retired, detail: "GitHub removed the idle runner" };
  else outcome = { kind: "no-job", runnerGone, detail: `runner exited (${code}) without a job` };
  const level = outcome.kind === "succeeded" || outcome.kind === "job-failed" ? "info" : "warn";
  log[level]("run.done", `${outcome.kind}${outcome.job ? ` job="${outcome.job}" result=${outcome.result ?? "none"}` : ""}${outcome.detail ? `: ${outcome.detail}` : ""}`, { duration_ms: Date.now() - started, outcome: outcome.kind });
  return outcome;
}

async function readStdinJit(): Promise<string> {
  const text = (await new Response(Bun.stdin.stream()).text()).trim();
  if (!text) throw new UsageError("ssh-run: expected the JIT config on stdin (the JSON from `token`, or the bare encoded config)");
  const jit = text.startsWith("{") ? (JSON.parse(text) as { encoded_jit_config?: string }).encoded_jit_config : text;
  if (!jit) throw new UsageError("ssh-run: the JSON on stdin has no encoded_jit_config");
  return jit;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  if (!values.ip) throw new UsageError("ssh-run: --ip IP is required");
  const { config, log } = openSlot(common, spec.name);
  const jit = await readStdinJit();
  registerSecret(jit);
  const outcome = await sshRun({ config, ip: values.ip, jitConfig: jit, log });
  return exitCode(OUTCOME_EXIT[outcome.kind]);
}

if (import.meta.main) await runCli(spec, main);
