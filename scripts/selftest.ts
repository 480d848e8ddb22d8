#!/usr/bin/env bun
// selftest: checks on this Mac, from where the slots run (a one-shot launchd
// agent in the GUI session), what the tests can only simulate.
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig } from "../lib/config/index.ts";
import { exitCode, UsageError } from "../lib/core/errors.ts";
import { recordExit, runInAgent } from "../lib/host/selftest-agent.ts";
import { formatRow, formatSummary, runSelftest, writeReport } from "../lib/host/selftest.ts";
import { runLaunchctl } from "../lib/host/launchd/launchctl.ts";
import { createLogger } from "../lib/core/log.ts";
import { redact } from "../lib/core/redact.ts";

export const spec = {
  name: "selftest",
  summary: "check this Mac from where the slots run (a one-shot launchd agent): host checks, one real VM cycle with no job, the snapshot path; prints a table, writes a JSON report",
  // No --slot: it uses slot 1's names (and slot 2's for two goldens side by side).
  common: false,
  options: {
    config: { type: "string", value: "PATH", description: "config file (default $MACOS_RUNNER_CONFIG, else ~/.config/macos-runner/config.yml)" },
    verbose: { type: "boolean", description: "log debug events too" },
    snapshot: { type: "boolean", description: "check the snapshot path (golden, suspend, restore, clock) even when vm.start is cold" },
    report: { type: "string", value: "PATH", description: "where the JSON report goes (default <host.log_dir>/selftest-<time>.json)" },
    "in-agent": { type: "boolean", description: "internal: the run inside the one-shot agent" },
  },
  exits: {
    failure: "at least one check FAILed (each FAIL row says what to do)",
    unavailable: "no GUI session for this user (enable automatic login and log in)",
    tempfail: "another selftest is running on this host",
    timeout: "the agent did not finish within its deadline (it was booted out; its VMs are removed)",
    stopped: "stopped by a signal (the agent was booted out; its VMs are removed)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** The clone may pull the image; six boots at most. */
const deadlineMs = (bootTimeoutMs: number) => 20 * 60_000 + 6 * bootTimeoutMs;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number> {
  const config = loadConfig({ path: common.config });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  const reportPath = values.report ?? join(config.host.logDir, `selftest-${stamp}.json`);
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => stop.abort());
  if (values["in-agent"]) {
    const log = createLogger({ verbose: common.verbose, fields: { command: "selftest" } });
    // Redacted like the log and the report: a row quotes what tart or the guest said.
    const say = (line: string) => process.stdout.write(`${redact(line)}\n`);
    say("selftest: host checks, one VM cycle with no job, then the snapshot path; rows come as checks end\n");
    const report = await runSelftest({
      config, log, snapshot: Boolean(values.snapshot), binary: Bun.isStandaloneExecutable ? realpathSync(process.execPath) : undefined, signal: stop.signal, onResult: (r) => say(formatRow(r)),
    });
    writeReport(reportPath, report);
    say(formatSummary(report, reportPath));
    const code = stop.signal.aborted ? exitCode("stopped") : report.summary.fail > 0 ? exitCode("failure") : exitCode("ok");
    recordExit(config, code);
    return code;
  }
  if (!Bun.isStandaloneExecutable) throw new UsageError("selftest: run the compiled macos-runner (the agent runs the binary itself)");
  const outcome = await runInAgent({
    config, uid: process.getuid?.() ?? 0, program: realpathSync(process.execPath), args: values.snapshot ? ["--snapshot"] : [], reportPath,
    launchctl: runLaunchctl, write: (text) => process.stdout.write(text), signal: stop.signal, deadlineMs: deadlineMs(config.vm.bootTimeoutMs),
  });
  if (outcome.kind === "exited") return outcome.code;
  if (outcome.kind === "died") {
    process.stdout.write(`\nselftest: its agent ended without a result (exit ${outcome.code}; its log: ${config.host.logDir}/selftest.log). What it made goes with the next selftest, or: cleanup --slot 1 --sweep (and --slot 2)\n`);
    return exitCode("failure");
  }
  if (outcome.kind === "timeout") process.stdout.write(`\nselftest: its agent did not finish within ${Math.round(deadlineMs(config.vm.bootTimeoutMs) / 60_000)} min; booted out\n`);
  return exitCode(outcome.kind === "timeout" ? "timeout" : "stopped");
}

if (import.meta.main) await runCli(spec, main);
