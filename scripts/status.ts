#!/usr/bin/env bun
// status: this host's slots at a glance. Reads only (no lock, nothing
// written), so it is safe while the loops run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../lib/core/log.ts";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig } from "../lib/config/index.ts";
import { tartFor } from "../lib/slot/context.ts";
import { exitCode, MacosRunnerError } from "../lib/core/errors.ts";
import { createGitHubClient } from "../lib/github/client.ts";
import { listRunners } from "../lib/github/runners.ts";
import { gatherStatus, hostRunners, renderStatus, type StatusReport } from "../lib/host/status.ts";

export const spec = {
  name: "status",
  summary: "show this host's slots (phase, VM, runner, job, failures, image) from the state files and tart; changes nothing",
  options: {
    json: { type: "boolean", description: "print JSON instead of the table" },
    github: { type: "boolean", description: "also list this host's runners on GitHub (names <prefix>-<host>-<slot>-…)" },
  },
  exits: {
    config: "config invalid, or GitHub refused the credentials (--github)",
    tempfail: "GitHub unavailable or rate limited (--github); the table is still printed",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** A GitHub error is put in the report and returned. */
async function addRunners(report: StatusReport, config: ReturnType<typeof loadConfig>): Promise<MacosRunnerError | undefined> {
  // A scratch state dir: status must not write the loops' token or installation caches.
  const scratch = mkdtempSync(join(tmpdir(), "macos-runner-status-"));
  try {
    const gh = createGitHubClient(config.github, { stateDir: scratch, timeoutMs: 15_000, log: createLogger({ fields: { command: "status" } }), retry: { attempts: 2 } });
    report.runners = hostRunners(await listRunners(gh, { namePrefix: `${config.runner.namePrefix}-` }), report, config.runner.namePrefix);
    return undefined;
  } catch (err) {
    report.runners_error = (err as Error).message;
    return err instanceof MacosRunnerError ? err : new MacosRunnerError((err as Error).message, { kind: "tempfail" });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const config = loadConfig({ path: common.config });
  const report = await gatherStatus({ config, tart: tartFor(config), slots: common.slot ? [common.slot] : undefined });
  const githubError = values.github ? await addRunners(report, config) : undefined;
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
  return githubError ? githubError.exitCode : exitCode("ok");
}

if (import.meta.main) await runCli(spec, main);
